//===- FastExpTest.cpp - The inline exp of the activations against libm ---===//
//
// codegen/FastMath.h's emitExpF32 in a loop `out[i] = exp(in[i])`, put
// through the JIT's own O3 pipeline (so the loop is vectorised as in a
// kernel, with a scalar remainder) for the host, AVX2 (x86-64-v3) and
// baseline x86-64, and compared with std::exp over every 97th float of
// [-104, 89] (about 23 million values, both signs) plus the specials. The
// bound asserted is the one docs/JIT.md and FastMath.h state: at most 2 ulp
// from std::exp; the measured maximum is printed.
//
//===----------------------------------------------------------------------===//
#include "codegen/FastMath.h"
#include "codegen/Jit.h"
#include "codegen/Target.h"

#include "llvm/ExecutionEngine/Orc/CompileUtils.h"
#include "llvm/ExecutionEngine/Orc/LLJIT.h"
#include "llvm/IR/Verifier.h"

#include <gtest/gtest.h>

#include <bit>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

using namespace moe;

namespace {

using ExpLoop = void (*)(const float *in, float *out, int64_t n);

/// The loop, optimised and compiled for `cpu`, linked into `jit`.
ExpLoop compileExpLoop(llvm::orc::LLJIT &jit, const std::string &cpu, std::string &error) {
  auto target = codegen::Target::named(cpu);
  if (!target) {
    error = llvm::toString(target.takeError());
    return nullptr;
  }
  auto tm = codegen::createTargetMachine(*target);
  if (!tm) {
    error = llvm::toString(tm.takeError());
    return nullptr;
  }
  auto ctx = std::make_unique<llvm::LLVMContext>();
  auto m = std::make_unique<llvm::Module>("fastexp", *ctx);
  llvm::IRBuilder<> B(*ctx);
  auto *fty = llvm::FunctionType::get(B.getVoidTy(), {B.getPtrTy(), B.getPtrTy(), B.getInt64Ty()},
                                      false);
  auto *fn = llvm::Function::Create(fty, llvm::Function::ExternalLinkage, "exp_loop", *m);
  for (unsigned a = 0; a < 2; ++a)
    fn->addParamAttr(a, llvm::Attribute::NoAlias);
  auto *entry = llvm::BasicBlock::Create(*ctx, "entry", fn);
  auto *body = llvm::BasicBlock::Create(*ctx, "body", fn);
  auto *exit = llvm::BasicBlock::Create(*ctx, "exit", fn);
  B.SetInsertPoint(entry);
  llvm::Value *in = fn->getArg(0), *out = fn->getArg(1), *n = fn->getArg(2);
  B.CreateCondBr(B.CreateICmpSGT(n, B.getInt64(0)), body, exit);
  B.SetInsertPoint(body);
  auto *i = B.CreatePHI(B.getInt64Ty(), 2);
  i->addIncoming(B.getInt64(0), entry);
  llvm::Value *x = B.CreateLoad(B.getFloatTy(), B.CreateGEP(B.getFloatTy(), in, i));
  B.CreateStore(codegen::emitExpF32(B, x), B.CreateGEP(B.getFloatTy(), out, i));
  llvm::Value *next = B.CreateAdd(i, B.getInt64(1));
  i->addIncoming(next, body);
  B.CreateCondBr(B.CreateICmpSLT(next, n), body, exit);
  B.SetInsertPoint(exit);
  B.CreateRetVoid();
  if (llvm::verifyModule(*m, &llvm::errs())) {
    error = "invalid IR";
    return nullptr;
  }
  codegen::optimizeModule(*m, **tm);
  llvm::orc::SimpleCompiler compiler(**tm);
  auto obj = compiler(*m);
  if (!obj) {
    error = llvm::toString(obj.takeError());
    return nullptr;
  }
  if (auto e = jit.addObjectFile(std::move(*obj))) {
    error = llvm::toString(std::move(e));
    return nullptr;
  }
  auto sym = jit.lookup("exp_loop");
  if (!sym) {
    error = llvm::toString(sym.takeError());
    return nullptr;
  }
  return sym->toPtr<ExpLoop>();
}

/// Distance in units in the last place between two non-negative floats
/// (+inf is one past FLT_MAX).
int64_t ulpDistance(float a, float b) {
  return std::llabs((int64_t)std::bit_cast<uint32_t>(a) - (int64_t)std::bit_cast<uint32_t>(b));
}

/// The inputs: every 97th float of [-104, 89] by bit pattern, the ends of
/// the ranges and the specials.
std::vector<float> inputs() {
  std::vector<float> xs;
  const uint32_t posEnd = std::bit_cast<uint32_t>(89.0f);
  const uint32_t negEnd = std::bit_cast<uint32_t>(-104.0f);
  for (uint64_t b = 0; b <= posEnd; b += 97)
    xs.push_back(std::bit_cast<float>((uint32_t)b));
  for (uint64_t b = 0x80000000u; b <= negEnd; b += 97)
    xs.push_back(std::bit_cast<float>((uint32_t)b));
  const float specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, FLT_MAX, -FLT_MAX,
                            FLT_MIN, -FLT_MIN, 1e-45f, -1e-45f, 1.0f, -1.0f, 0.5f, -0.5f,
                            88.0f, 88.72283f, 88.722839f, 88.7228394f, 88.72284f, 88.8f, 89.0f,
                            90.0f, 1000.0f, -87.33654f, -87.3365479f, -100.0f, -103.27893f,
                            -103.972076f, -103.972084f, -104.0f, -105.0f, -1000.0f,
                            0.34657359f, -0.34657359f, 0.6931472f, -0.6931472f};
  for (float s : specials)
    xs.push_back(s);
  return xs;
}

void checkCpu(const std::string &cpu) {
  auto host = codegen::Target::host();
  ASSERT_TRUE((bool)host) << llvm::toString(host.takeError());
  auto want = codegen::Target::named(cpu);
  ASSERT_TRUE((bool)want) << llvm::toString(want.takeError());
  if (want->vectorBits > host->vectorBits || (want->avx2 && !host->avx2) ||
      (want->fma && !host->fma))
    GTEST_SKIP() << "the host cannot run code for " << cpu;
  auto jit = llvm::orc::LLJITBuilder().create();
  ASSERT_TRUE((bool)jit) << llvm::toString(jit.takeError());
  std::string error;
  ExpLoop f = compileExpLoop(**jit, cpu, error);
  ASSERT_NE(f, nullptr) << error;

  std::vector<float> xs = inputs();
  std::vector<float> got(xs.size());
  f(xs.data(), got.data(), (int64_t)xs.size());

  int64_t worstLibm = 0, worstExact = 0;
  float worstX = 0;
  for (size_t k = 0; k < xs.size(); ++k) {
    float x = xs[k], ref = std::exp(x), exact = (float)std::exp((double)x);
    if (std::isnan(ref)) {
      EXPECT_TRUE(std::isnan(got[k])) << "exp(" << x << ") = " << got[k];
      continue;
    }
    ASSERT_FALSE(std::isnan(got[k]) || std::signbit(got[k])) << "exp(" << x << ") = " << got[k];
    int64_t d = ulpDistance(got[k], ref);
    if (d > worstLibm) {
      worstLibm = d;
      worstX = x;
    }
    worstExact = std::max(worstExact, ulpDistance(got[k], exact));
    if (x > 89.0f || x < -104.0f) { // past the clamp: exactly +inf or 0
      EXPECT_EQ(got[k], ref) << "exp(" << x << ")";
    }
  }
  std::printf("[ fast exp ] %s: %zu inputs, max %lld ulp from std::exp (at %.9g), "
              "%lld ulp from the correctly rounded exp\n",
              cpu.empty() ? "host" : cpu.c_str(), xs.size(), (long long)worstLibm, worstX,
              (long long)worstExact);
  EXPECT_LE(worstLibm, 2) << "worst at x = " << worstX;
  EXPECT_LE(worstExact, 2);
}

TEST(FastExp, WithinTwoUlpOfLibmOnTheHost) { checkCpu(""); }
TEST(FastExp, WithinTwoUlpOfLibmOnAvx2) { checkCpu("x86-64-v3"); }
TEST(FastExp, WithinTwoUlpOfLibmOnBaseline) { checkCpu("x86-64"); }

} // namespace

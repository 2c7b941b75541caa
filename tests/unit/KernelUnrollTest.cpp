//===- KernelUnrollTest.cpp - which kernels LLVM may unroll ---------------===//
//
// KernelEmitter::unrollLoops: LLVM unrolls the loops of a matmul's or
// matmul_id's main kernel (the microkernels' K loops, where it pays at run
// time) and of no other kernel (routing, topk, softmax, reductions,
// element-wise stores, quantising, packing: there unrolling doubled the
// compile time; docs/JIT.md). Checked on the unoptimised module of each
// tiny example layer, with q8_0 experts as well, through the loops' latch
// metadata.
//
//===----------------------------------------------------------------------===//
#include "codegen/Program.h"
#include "ir/Parser.h"
#include "tests/unit/IRTestUtil.h"

#include "llvm/Analysis/LoopInfo.h"
#include "llvm/IR/Dominators.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Transforms/Utils/LoopUtils.h"

#include <gtest/gtest.h>

using namespace moe;

namespace {

std::string example(const char *file) {
  auto buf = llvm::MemoryBuffer::getFile((test::examplesDir() / file).string());
  return buf ? (*buf)->getBuffer().str() : "";
}

struct Loops {
  unsigned unrollable = 0, disabled = 0;
};

Loops loopsOf(llvm::Function &f) {
  llvm::DominatorTree dt(f);
  llvm::LoopInfo li(dt);
  Loops n;
  for (llvm::Loop *l : li.getLoopsInPreorder())
    (llvm::getBooleanLoopAttribute(l, "llvm.loop.unroll.disable") ? n.disabled : n.unrollable)++;
  return n;
}

void check(const std::string &text, const std::string &what, bool packed = false) {
  SCOPED_TRACE(what);
  auto m = parseModuleString(text);
  ASSERT_TRUE((bool)m) << llvm::toString(m.takeError());
  auto prog = codegen::lowerFunction(*(*m)->functions.front());
  ASSERT_TRUE((bool)prog) << llvm::toString(prog.takeError());
  unsigned mainMatmuls = 0, others = 0, helpers = 0;
  for (const codegen::Step &s : prog->steps) {
    if (s.kind != codegen::StepKind::Kernel)
      continue;
    llvm::Function *f = prog->module->getFunction(s.symbol);
    ASSERT_NE(f, nullptr) << s.symbol;
    Loops n = loopsOf(*f);
    bool matmulMain = s.main && (s.op->is(OpKind::Matmul) || s.op->is(OpKind::MatmulId));
    if (matmulMain) {
      ++mainMatmuls;
      EXPECT_GT(n.unrollable, 0u) << s.symbol << ": no loop LLVM may unroll";
    } else {
      ++others;
      helpers += llvm::StringRef(s.symbol).ends_with("_quant") ||
                 llvm::StringRef(s.symbol).ends_with("_pack");
      EXPECT_EQ(n.unrollable, 0u) << s.symbol << ": " << n.unrollable << " of "
                                  << n.unrollable + n.disabled << " loops may be unrolled";
    }
  }
  EXPECT_GT(mainMatmuls, 0u);
  EXPECT_GT(others, 0u);
  if (packed) {
    EXPECT_GT(helpers, 0u) << "no quantising or packing kernel";
  }
}

TEST(KernelUnroll, OnlyMatmulMainKernels) {
  for (const char *file : {"qwen3_tiny.moe", "gptoss_tiny.moe", "gemma4_tiny.moe"}) {
    std::string text = example(file);
    if (text.empty())
      GTEST_SKIP() << "cannot read examples/" << file;
    check(text, file);
    // The same layer with q8_0 weights and activations (what
    // quantize-activations makes of it): the packed kernels, their
    // activations' quantising and their weights' packing.
    std::string q;
    for (llvm::StringRef rest = text; !rest.empty();) {
      auto [line, tail] = rest.split('\n');
      rest = tail;
      std::string l = line.str();
      if (line.contains("_exps:") || line.contains("gate_inp:"))
        if (size_t at = l.find("x f32> {param"); at != std::string::npos)
          l.replace(at, 6, "x q8_0>");
      if (line.contains("= matmul")) {
        size_t colon = l.find(" : ");
        l.insert(colon == std::string::npos ? l.size() : colon, " {act = q8_0}");
      }
      q += l + "\n";
    }
    check(q, std::string(file) + " with q8_0 weights", /*packed=*/true);
  }
}

} // namespace

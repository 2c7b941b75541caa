//===- JitSplitTest.cpp - a program compiled in parts, on several threads -===//
//
// codegen::splitForCompile: every kernel in exactly one part, each part a
// valid module with the constants it uses; and the JIT: a program compiled
// in 1, 2 or 3 parts computes the same bits, its parts are cached together
// in one file under the program's key, and a second compile takes them from
// the cache, with any number of compile threads.
//
//===----------------------------------------------------------------------===//
#include "codegen/Jit.h"
#include "codegen/ObjectCache.h"
#include "ir/Parser.h"
#include "runtime/Executable.h"
#include "runtime/Random.h"

#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/Verifier.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/xxhash.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <set>

using namespace moe;

namespace {

/// A module of `n` kernels, kernel i with i + 1 adds, kernels 1 and 3
/// reading one private constant table.
std::unique_ptr<llvm::Module> kernels(llvm::LLVMContext &ctx, unsigned n) {
  auto m = std::make_unique<llvm::Module>("prog", ctx);
  llvm::IRBuilder<> B(ctx);
  auto *table = new llvm::GlobalVariable(
      *m, B.getInt32Ty(), true, llvm::GlobalValue::PrivateLinkage, B.getInt32(42), "table");
  auto *fty = llvm::FunctionType::get(B.getInt32Ty(), {B.getInt32Ty()}, false);
  for (unsigned i = 0; i < n; ++i) {
    auto *f = llvm::Function::Create(fty, llvm::Function::ExternalLinkage, "k" + std::to_string(i), *m);
    B.SetInsertPoint(llvm::BasicBlock::Create(ctx, "entry", f));
    llvm::Value *v = f->getArg(0);
    for (unsigned j = 0; j <= i; ++j)
      v = B.CreateAdd(v, B.getInt32(j + 1));
    if (i == 1 || i == 3)
      v = B.CreateAdd(v, B.CreateLoad(B.getInt32Ty(), table));
    B.CreateRet(v);
  }
  return m;
}

TEST(JitSplit, EveryKernelInExactlyOnePart) {
  llvm::LLVMContext ctx;
  auto m = kernels(ctx, 5);
  for (unsigned parts : {1u, 2u, 3u, 9u}) {
    SCOPED_TRACE("parts = " + std::to_string(parts));
    auto out = codegen::splitForCompile(*m, parts);
    ASSERT_EQ(out.size(), std::min(parts, 5u));
    std::multiset<std::string> defined;
    for (size_t i = 0; i < out.size(); ++i) {
      llvm::Module &p = *out[i];
      std::string problems;
      llvm::raw_string_ostream ps(problems);
      EXPECT_FALSE(llvm::verifyModule(p, &ps)) << problems;
      EXPECT_EQ(p.getModuleIdentifier(), out.size() == 1 ? "prog" : "prog." + std::to_string(i));
      bool usesTable = false;
      for (llvm::Function &f : p) {
        EXPECT_FALSE(f.isDeclaration()) << f.getName().str() << " left as a declaration";
        defined.insert(f.getName().str());
        usesTable |= f.getName() == "k1" || f.getName() == "k3";
      }
      EXPECT_EQ(usesTable, p.getNamedGlobal("table") != nullptr);
    }
    EXPECT_EQ(defined, (std::multiset<std::string>{"k0", "k1", "k2", "k3", "k4"}));
  }
  // Two parts of about equal size: k4 (5 adds) and k3 (4 + a load) apart.
  auto two = codegen::splitForCompile(*m, 2);
  EXPECT_NE(bool(two[0]->getFunction("k4")), bool(two[0]->getFunction("k3")));
}

const char *kLayer = R"(
func @f(%x: tensor<T x 64 x f32>, %gate_inp: tensor<8 x 64 x f32> {param},
        %up: tensor<8 x 64 x 64 x q8_0> {param}, %gate: tensor<8 x 64 x 64 x q8_0> {param},
        %down: tensor<8 x 64 x 64 x q8_0> {param})
    -> tensor<T x 64 x f32> where T in [1, 64] {
  %logits = matmul %x, %gate_inp
  %probs = softmax %logits {axis = -1}
  %ids = topk %probs {k = 2}
  %w = gather %probs, %ids {axis = 1}
  %x3 = reshape %x {shape = [T, 1, 64]}
  %u = matmul_id %x3, %up, %ids {act = q8_0}
  %g = matmul_id %x3, %gate, %ids {act = q8_0}
  %a = swiglu %g, %u
  %d = matmul_id %a, %down, %ids {act = q8_0}
  %w3 = reshape %w {shape = [T, 2, 1]}
  %wd = mul %d, %w3
  %out = reduce_sum %wd {axis = 1}
  return %out
}
)";

size_t filesIn(const std::string &dir) {
  std::error_code ec;
  size_t n = 0;
  for (llvm::sys::fs::directory_iterator it(dir, ec), end; it != end && !ec; it.increment(ec))
    ++n;
  return n;
}

TEST(JitSplit, PartsComputeTheSameBitsAndAreCachedEach) {
  auto m = parseModuleString(kLayer);
  ASSERT_TRUE(bool(m)) << llvm::toString(m.takeError());
  const Function &f = *(*m)->functions.front();
  SymbolBindings syms{{"T", 13}};
  auto args = randomArguments(f, syms, 3);
  ASSERT_TRUE(bool(args)) << llvm::toString(args.takeError());
  llvm::SmallString<128> dir;
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("moe-jit-split", dir));
  std::vector<float> first;
  for (unsigned threads : {1u, 2u, 3u}) {
    SCOPED_TRACE("compile threads = " + std::to_string(threads));
    std::string cache = (dir + "/c" + std::to_string(threads)).str();
    for (bool warm : {false, true}) {
      ExecOptions o;
      o.jit.cacheDir = cache;
      o.jit.compileThreads = threads;
      o.jit.warn = [](const std::string &w) { ADD_FAILURE() << "JIT warning: " << w; };
      auto x = Executable::compile(f, o);
      ASSERT_TRUE(bool(x)) << llvm::toString(x.takeError());
      EXPECT_EQ((*x)->jitStats().modulesCompiled, warm ? 0u : 1u);
      EXPECT_EQ((*x)->jitStats().modulesFromCache, warm ? 1u : 0u);
      // One file per program, named by the program's key, whatever the parts.
      EXPECT_EQ(filesIn(cache), 1u);
      EXPECT_TRUE(llvm::sys::fs::exists(cache + "/" + (*x)->jitStats().cacheKey + ".o"));
      auto r = (*x)->run(*args, syms);
      ASSERT_TRUE(bool(r)) << llvm::toString(r.takeError());
      const std::vector<float> &out = (*r)[0].f;
      if (first.empty())
        first = out;
      ASSERT_EQ(out.size(), first.size());
      EXPECT_EQ(0, std::memcmp(out.data(), first.data(), out.size() * sizeof(float)));
    }
  }
  // Parts written by 3 threads are found by 1 and by 2.
  for (unsigned threads : {1u, 2u}) {
    ExecOptions o;
    o.jit.cacheDir = (dir + "/c3").str();
    o.jit.compileThreads = threads;
    auto x = Executable::compile(f, o);
    ASSERT_TRUE(bool(x)) << llvm::toString(x.takeError());
    EXPECT_EQ((*x)->jitStats().modulesFromCache, 1u);
    auto r = (*x)->run(*args, syms);
    ASSERT_TRUE(bool(r)) << llvm::toString(r.takeError());
    EXPECT_EQ(0, std::memcmp((*r)[0].f.data(), first.data(), first.size() * sizeof(float)));
  }
  llvm::sys::fs::remove_directories(dir);
}

/// A parts file whose part table runs past its end (its checksum right) is
/// refused with a warning, as a file that is not an object at all is.
TEST(JitSplit, CacheRefusesABadPartTable) {
  llvm::SmallString<128> dir;
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("moe-jit-parts", dir));
  std::vector<std::string> warnings;
  codegen::ObjectCache cache(dir.str().str(), [&](const std::string &w) { warnings.push_back(w); });
  std::string payload(8, '\0');
  payload[0] = 100; // a part of 100 bytes, none of which follow
  uint64_t h = llvm::xxh3_64bits(llvm::StringRef(payload));
  {
    std::ofstream os(cache.pathOf("k"), std::ios::binary);
    os << payload;
    os.write("MOEOBJ2", 8);
    os.write(reinterpret_cast<const char *>(&h), 8);
  }
  EXPECT_TRUE(cache.load("k").empty());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0], cache.pathOf("k") + " is corrupt (a part's size is past its end); recompiling");
  llvm::sys::fs::remove_directories(dir);
}

} // namespace

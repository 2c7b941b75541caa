//===- ApiToolsTest.cpp - The library beside the tools --------------------===//
//
// What the library shares with the command-line tools: the object cache
// (one key for a function, whichever front end compiled it), GGUF models
// written by moe-gguf and layers imported by moe-import (the architecture
// check), and the warnings the library sends to the diagnostic handler.
//
//===----------------------------------------------------------------------===//
#include "ApiTestUtil.h"

#include <cstdio>
#include <memory>

using namespace moe;
using namespace moe::apitest;

namespace {

/// Runs a shell command; its standard output, and its exit status in `status`.
std::string shell(const std::string &cmd, int &status) {
  std::string out;
  FILE *p = popen(cmd.c_str(), "r");
  if (!p) {
    status = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0)
    out.append(buf, n);
  status = pclose(p);
  return out;
}

std::string tool(const char *name) { return std::string(MOE_TOOLS_DIR) + "/" + name; }

/// A layer imported from a tiny model of `arch` that moe-gguf writes.
struct Imported {
  std::string gguf, moe;
};
Imported importTiny(const std::string &dir, const std::string &arch) {
  Imported r{dir + "/" + arch + ".gguf", dir + "/" + arch + ".moe"};
  int st = 0;
  shell(tool("moe-gguf") + " tiny " + arch + " --type q8_0 -o " + r.gguf, st);
  EXPECT_EQ(st, 0);
  shell(tool("moe-import") + " " + r.gguf + " --layer 1 -o " + r.moe, st);
  EXPECT_EQ(st, 0);
  return r;
}

} // namespace

TEST(ApiCache, LibraryAndMoeRunShareOneKey) {
  std::string dir = tempDir("cache");
  std::string file = std::string(MOE_SOURCE_DIR) + "/examples/gemma4_tiny.moe";
  // The library compiles into an empty cache; moe-run, with the same
  // pipeline, must find the object there (and not compile).
  auto m = parseFile(file);
  ASSERT_TRUE(!!m) << message(m.takeError());
  ASSERT_EQ(message(runPipeline(*m, "default")), "");
  jit::Options o;
  o.cacheDir = dir;
  auto exe = jit::compile(*m, m->functionNames()[0], o);
  ASSERT_TRUE(!!exe) << message(exe.takeError());
  EXPECT_FALSE(exe->fromCache());
  ASSERT_EQ(exe->cacheKey().size(), 16u);
  EXPECT_TRUE(std::ifstream(dir + "/" + exe->cacheKey() + ".o").good());
  int st = 0;
  std::string out = shell(tool("moe-run") + " " + file + " -p default --sym T=3 --threads 2 " +
                              "--time --cache-dir " + dir,
                          st);
  EXPECT_EQ(st, 0);
  EXPECT_NE(out.find(", 0 compiled, 1 from cache)"), std::string::npos) << out;

  // The other way round: moe-run fills a cache the library then hits.
  std::string dir2 = tempDir("cache2");
  shell(tool("moe-run") + " " + file + " --sym T=3 --cache-dir " + dir2, st);
  EXPECT_EQ(st, 0);
  auto plain = parseFile(file);
  ASSERT_TRUE(!!plain) << message(plain.takeError());
  o.cacheDir = dir2;
  o.threads = 3;
  auto exe2 = jit::compile(*plain, plain->functionNames()[0], o);
  ASSERT_TRUE(!!exe2) << message(exe2.takeError());
  EXPECT_TRUE(exe2->fromCache());
}

TEST(ApiDiagnostics, CacheWarningsGoToTheHandler) {
  std::string dir = tempDir("diag");
  auto m = parse(example("qwen3_tiny.moe"));
  ASSERT_TRUE(!!m) << message(m.takeError());
  jit::Options o;
  o.cacheDir = dir;
  auto first = jit::compile(*m, "moe_ffn", o);
  ASSERT_TRUE(!!first) << message(first.takeError());
  // Spoil the cached object: the next compile warns and recompiles.
  { std::ofstream(dir + "/" + first->cacheKey() + ".o") << "not an object"; }
  std::vector<std::pair<DiagnosticSeverity, std::string>> got;
  DiagnosticHandler previous = setDiagnosticHandler(
      [&](DiagnosticSeverity s, const std::string &msg) { got.push_back({s, msg}); });
  auto second = jit::compile(*m, "moe_ffn", o);
  setDiagnosticHandler(previous);
  ASSERT_TRUE(!!second) << message(second.takeError());
  EXPECT_FALSE(second->fromCache());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first, DiagnosticSeverity::Warning);
  EXPECT_EQ(got[0].second, dir + "/" + first->cacheKey() + ".o is not a moe cache object; recompiling");
}

TEST(ApiDiagnostics, PassRemarksGoToTheHandler) {
  // rms-fusion refuses a pattern whose mean divides by another length, with
  // a remark saying why; the library passes it on instead of dropping it.
  auto m = parse(R"(
func @f(%x: tensor<T x 8 x f32>) -> tensor<T x 8 x f32> where T in [1, 16] {
  %sq = mul %x, %x
  %s = reduce_sum %sq {axis = -1, keepdim}
  %m = scale %s {factor = 0.25}
  %e = scale %m {factor = 1.0, bias = 1.0e-6}
  %r = rsqrt %e
  %y = mul %x, %r
  return %y
}
)");
  ASSERT_TRUE(!!m) << message(m.takeError());
  std::vector<std::pair<DiagnosticSeverity, std::string>> got;
  DiagnosticHandler previous = setDiagnosticHandler(
      [&](DiagnosticSeverity s, const std::string &msg) { got.push_back({s, msg}); });
  llvm::Error e = runPipeline(*m, "rms-fusion");
  setDiagnosticHandler(previous);
  ASSERT_EQ(message(std::move(e)), "");
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got[0].first, DiagnosticSeverity::Remark);
  EXPECT_NE(got[0].second.find("not fused into rms_norm: the mean divides by 4, not by the "
                               "length 8 of the normalised axis"),
            std::string::npos)
      << got[0].second;
}

TEST(ApiGguf, ArchitectureMustMatch) {
  std::string dir = tempDir("arch");
  Imported qwen = importTiny(dir, "qwen3moe");
  Imported gemma = importTiny(dir, "gemma4");
  auto m = parseFile(qwen.moe);
  ASSERT_TRUE(!!m) << message(m.takeError());
  EXPECT_NE(m->str().find("attributes {architecture = \"qwen3moe\"}"), std::string::npos);
  auto exe = jit::compile(*m, "ffn_blk_1");
  ASSERT_TRUE(!!exe) << message(exe.takeError());
  std::string msg;
  EXPECT_EQ(kindOf(exe->bindGgufParams(gemma.gguf), &msg), ErrorKind::Bind);
  EXPECT_EQ(msg, gemma.gguf + ": general.architecture is 'gemma4', but @ffn_blk_1 was imported "
                              "for 'qwen3moe'; nothing bound");
  ASSERT_EQ(message(exe->bindGgufParams(qwen.gguf)), "");
  std::vector<float> x = input(3, 64);
  std::vector<HostTensor> out;
  ASSERT_EQ(message(exe->run({{"x", {DType::F32, {3, 64}, x.data()}}}, out)), "");

  // A layer that does not record its architecture binds any file whose
  // tensors fit (here: the same file, the attribute removed).
  std::string text = m->str();
  std::string attr = " attributes {architecture = \"qwen3moe\"}";
  text.erase(text.find(attr), attr.size());
  auto bare = parse(text);
  ASSERT_TRUE(!!bare) << message(bare.takeError());
  auto exe2 = jit::compile(*bare, "ffn_blk_1");
  ASSERT_TRUE(!!exe2) << message(exe2.takeError());
  ASSERT_EQ(message(exe2->bindGgufParams(qwen.gguf)), "");
  std::vector<HostTensor> out2;
  ASSERT_EQ(message(exe2->run({{"x", {DType::F32, {3, 64}, x.data()}}}, out2)), "");
  EXPECT_EQ(out2[0].bytes, out[0].bytes);
}

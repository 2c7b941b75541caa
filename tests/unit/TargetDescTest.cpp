//===- TargetDescTest.cpp - Target descriptions as data -------------------===//
//
// The built-in cpu target accepts every shape class; file targets restrict
// the fused rms_norm by rows (dynamic, min/max over the declared symbol
// ranges) and cols; and every way a target file can be malformed is an
// llvm::Error naming the file and the key, never a silently ignored limit.
//
//===----------------------------------------------------------------------===//
#include "passes/TargetDesc.h"
#include "tests/unit/IRTestUtil.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

using namespace moe;
using namespace moe::test;

namespace {

DimExpr K = DimExpr::symbol("K");

SymbolRanges ranges(int64_t tHi = 64) {
  SymbolRanges r;
  r["T"] = SymbolRange{1, tHi};
  r["K"] = SymbolRange{1, 4096};
  return r;
}

TargetDesc parseOk(llvm::StringRef json) {
  auto t = TargetDesc::parse(json, "t.json", "t");
  if (!t) {
    ADD_FAILURE() << llvm::toString(t.takeError());
    return TargetDesc("invalid");
  }
  return std::move(*t);
}

std::string parseError(llvm::StringRef json) {
  auto t = TargetDesc::parse(json, "t.json", "t");
  if (t)
    return "(parsed)";
  return llvm::toString(t.takeError());
}

std::string why(const TargetDesc &t, const TensorType &x, const SymbolRanges &r = ranges()) {
  auto w = t.whyInvalid("rms_norm", x, r);
  return w ? *w : "valid";
}

} // namespace

TEST(TargetDesc, CpuFusedRmsNormIsValidForEveryShapeClass) {
  const TargetDesc &cpu = TargetDesc::cpu();
  EXPECT_EQ(cpu.getName(), "cpu");
  EXPECT_EQ(why(cpu, f32({T, 64})), "valid");
  EXPECT_EQ(why(cpu, f32({1, 64})), "valid");
  EXPECT_EQ(why(cpu, f32({T, 4, K})), "valid");
  EXPECT_EQ(why(cpu, f32({64})), "valid");
  EXPECT_EQ(why(cpu, f32({8192, 8192})), "valid");
  // No declared range for an unknown symbol: still valid (no limits to check).
  EXPECT_EQ(why(cpu, f32({DimExpr::symbol("U"), 64}), {}), "valid");
}

TEST(TargetDesc, StaticRowsRejectsDynamicRowsOnly) {
  TargetDesc t =
      parseOk(R"({"name": "npu-like", "kernels": {"rms_norm": {"dynamic_rows": false}}})");
  EXPECT_EQ(t.getName(), "npu-like");
  EXPECT_EQ(why(t, f32({T, 64})),
            "rows T are dynamic and the target's fused rms_norm requires static rows");
  EXPECT_EQ(why(t, f32({T, 4, 64})),
            "rows 4*T are dynamic and the target's fused rms_norm requires static rows");
  EXPECT_EQ(why(t, f32({1, 64})), "valid");
  EXPECT_EQ(why(t, f32({7, 64})), "valid");
  // Symbolic cols are a different class: still valid.
  EXPECT_EQ(why(t, f32({1, K})), "valid");
  // static_rows_only is the same fact spelled positively.
  TargetDesc s = parseOk(R"({"kernels": {"rms_norm": {"static_rows_only": true}}})");
  EXPECT_EQ(why(s, f32({T, 64})), why(t, f32({T, 64})));
  EXPECT_EQ(why(s, f32({3, 64})), "valid");
}

TEST(TargetDesc, MaxRowsUsesTheSymbolRanges) {
  TargetDesc t = parseOk(R"({"kernels": {"rms_norm": {"max_rows": 1}}})");
  EXPECT_EQ(t.getName(), "t"); // the default name
  EXPECT_EQ(why(t, f32({1, 64})), "valid");
  EXPECT_EQ(why(t, f32({64})), "valid"); // rank 1: one row
  EXPECT_EQ(why(t, f32({1, 1, 64})), "valid");
  EXPECT_EQ(why(t, f32({T, 64})),
            "rows T can be up to 64 and the target's fused rms_norm allows at most 1");
  EXPECT_EQ(why(t, f32({T, 64}), ranges(1)), "valid"); // T in [1, 1]
  EXPECT_EQ(why(t, f32({4, 64})), "rows 4 are more than the target's fused rms_norm allows (1)");
  EXPECT_NE(why(t, f32({DimExpr::symbol("U"), 64}), {}), "valid"); // unbounded
}

TEST(TargetDesc, MinRowsAndColLimits) {
  TargetDesc t = parseOk(R"({"kernels": {"rms_norm": {"min_rows": 2, "min_cols": 32,
                                                      "max_cols": 4096, "max_rows": null}}})");
  EXPECT_EQ(why(t, f32({T, 64})),
            "rows T can be as few as 1 and the target's fused rms_norm needs at least 2");
  EXPECT_EQ(why(t, f32({2, 64})), "valid");
  EXPECT_EQ(why(t, f32({2, 16})), "cols 16 are fewer than the target's fused rms_norm needs (32)");
  EXPECT_EQ(why(t, f32({2, 8192})),
            "cols 8192 are more than the target's fused rms_norm allows (4096)");
  EXPECT_EQ(why(t, f32({2, K})), "cols K can be as few as 1 and the target's fused rms_norm "
                                 "needs at least 32");
  TargetDesc d = parseOk(R"({"kernels": {"rms_norm": {"dynamic_cols": false}}})");
  EXPECT_EQ(why(d, f32({T, K})),
            "cols K are dynamic and the target's fused rms_norm requires static cols");
  EXPECT_EQ(why(d, f32({T, 64})), "valid");
}

TEST(TargetDesc, UnavailableKernelAndUnlistedKernels) {
  TargetDesc t = parseOk(R"({"kernels": {"rms_norm": {"available": false}}})");
  EXPECT_EQ(why(t, f32({1, 64})), "the target has no fused rms_norm kernel");
  // A target that lists no kernels restricts nothing.
  EXPECT_EQ(why(parseOk(R"({"name": "plain"})"), f32({T, 64})), "valid");
  EXPECT_EQ(why(parseOk("{}"), f32({T, 64})), "valid");
  // Limits can be built in code too.
  TargetDesc c("code");
  KernelShapeLimits l;
  l.maxRows = 8;
  c.setLimits("rms_norm", l);
  EXPECT_EQ(c.getLimits("rms_norm").maxRows, 8);
  EXPECT_EQ(why(c, f32({8, 64})), "valid");
  EXPECT_NE(why(c, f32({9, 64})), "valid");
}

TEST(TargetDesc, MalformedFilesNameTheFileAndTheKey) {
  EXPECT_EQ(parseError(R"({"kernels": {"rms_norm": {"max_row": 1}}})"),
            "t.json: unknown key 'kernels.rms_norm.max_row' (expected one of: available, "
            "dynamic_cols, dynamic_rows, max_cols, max_rows, min_cols, min_rows, "
            "static_rows_only)");
  EXPECT_EQ(parseError(R"({"kernel": {}})"),
            "t.json: unknown key 'kernel' (expected one of: kernels, name)");
  EXPECT_EQ(parseError(R"({"kernels": {"rmsnorm": {}}})"),
            "t.json: unknown kernel 'kernels.rmsnorm' (expected one of: rms_norm)");
  EXPECT_EQ(parseError(R"({"kernels": {"rms_norm": {"max_rows": "1"}}})"),
            "t.json: 'kernels.rms_norm.max_rows' must be a non-negative integer or null, "
            "got \"1\"");
  EXPECT_EQ(parseError(R"({"kernels": {"rms_norm": {"max_rows": -1}}})"),
            "t.json: 'kernels.rms_norm.max_rows' must be a non-negative integer or null, got -1");
  EXPECT_EQ(parseError(R"({"kernels": {"rms_norm": {"max_rows": 1.5}}})"),
            "t.json: 'kernels.rms_norm.max_rows' must be a non-negative integer or null, got 1.5");
  // A double of 2^63 or more (here 2^63 itself) must be refused, not
  // converted to int64 (undefined; found by fuzz-target-desc).
  EXPECT_EQ(parseError(R"({"kernels": {"rms_norm": {"max_cols": 9223372036854775800.5}}})"),
            "t.json: 'kernels.rms_norm.max_cols' must be a non-negative integer or null, "
            "got 9.2233720368547758e+18");
  EXPECT_EQ(parseError(R"({"kernels": {"rms_norm": {"max_cols": 1e300}}})"),
            "t.json: 'kernels.rms_norm.max_cols' must be a non-negative integer or null, "
            "got 1.0000000000000001e+300");
  EXPECT_EQ(parseError(R"({"kernels": {"rms_norm": {"dynamic_rows": 0}}})"),
            "t.json: 'kernels.rms_norm.dynamic_rows' must be true or false, got 0");
  EXPECT_EQ(parseError(R"({"kernels": {"rms_norm": true}})"),
            "t.json: 'kernels.rms_norm' must be an object of shape-class limits, got true");
  EXPECT_EQ(parseError(R"({"kernels": []})"),
            "t.json: 'kernels' must be an object mapping kernel names to their limits, got []");
  EXPECT_EQ(parseError(R"({"name": 3})"), "t.json: 'name' must be a non-empty string, got 3");
  EXPECT_EQ(parseError("[1]"), "t.json: a target description must be a JSON object, got [1]");
  EXPECT_EQ(parseError(R"({"kernels": {"rms_norm": {"dynamic_rows": true,
                                                   "static_rows_only": true}}})"),
            "t.json: 'kernels.rms_norm.dynamic_rows' and 'kernels.rms_norm.static_rows_only' "
            "contradict each other");
  std::string bad = parseError(R"({"kernels": {)");
  EXPECT_EQ(bad.rfind("t.json: invalid JSON: ", 0), 0u) << bad;
}

TEST(TargetDesc, LoadReadsAFileAndNamesIt) {
  llvm::SmallString<128> dir;
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("moe-target", dir));
  llvm::SmallString<128> good(dir), broken(dir);
  llvm::sys::path::append(good, "npu-static.json");
  llvm::sys::path::append(broken, "broken.json");
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(good, ec);
    ASSERT_FALSE(ec);
    os << R"({"kernels": {"rms_norm": {"dynamic_rows": false}}})";
    llvm::raw_fd_ostream os2(broken, ec);
    ASSERT_FALSE(ec);
    os2 << R"({"kernels": {"rms_norm": {"dynamic_rows": "no"}}})";
  }
  auto t = TargetDesc::load(good);
  ASSERT_TRUE(!!t) << llvm::toString(t.takeError());
  EXPECT_EQ(t->getName(), "npu-static"); // the file stem when "name" is absent
  EXPECT_EQ(why(*t, f32({T, 64})),
            "rows T are dynamic and the target's fused rms_norm requires static rows");

  auto b = TargetDesc::load(broken);
  ASSERT_FALSE(!!b);
  EXPECT_EQ(llvm::toString(b.takeError()),
            std::string(broken) +
                ": 'kernels.rms_norm.dynamic_rows' must be true or false, got \"no\"");

  llvm::SmallString<128> missing(dir);
  llvm::sys::path::append(missing, "missing.json");
  auto m = TargetDesc::load(missing);
  ASSERT_FALSE(!!m);
  std::string msg = llvm::toString(m.takeError());
  EXPECT_NE(msg.find("cannot read target description '" + std::string(missing) + "'"),
            std::string::npos)
      << msg;

  llvm::sys::fs::remove(good);
  llvm::sys::fs::remove(broken);
  llvm::sys::fs::remove(dir);
}

//===- PackAtBindTest.cpp - weights packed when binding ------------------===//
//
// Executable::packWeights with Binder::storedArgsForRank's feeds: a layer
// whose weights (a merged gate_up derived from in-place gate and up, the
// down and router weights) are read only through packed copies is packed
// one expert at a time, the derived gate_up never built whole, every byte of
// the in-place sources released exactly once; the runs then compute the bits
// of the runs that pack on the first run from whole arguments, at every T;
// and a run that would need the released memory again says so.
//
//===----------------------------------------------------------------------===//
#include "ir/Parser.h"
#include "runtime/Binder.h"
#include "runtime/Executable.h"
#include "runtime/Random.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>

using namespace moe;

namespace {

const char *kLayer = R"(
func @f(%x: tensor<T x 64 x f32>, %gate_inp: tensor<8 x 64 x f32> {param},
        %gate: tensor<8 x 64 x 64 x q8_0> {param}, %up: tensor<8 x 64 x 64 x q8_0> {param},
        %down: tensor<8 x 64 x 64 x q8_0> {param},
        %gu: tensor<8 x 128 x 64 x q8_0> {param, derive = "concat", from = ["gate", "up"], axis = 1})
    -> tensor<T x 64 x f32> where T in [1, 64] {
  %logits = matmul %x, %gate_inp
  %probs = softmax %logits {axis = -1}
  %ids = topk %probs {k = 2}
  %w = gather %probs, %ids {axis = 1}
  %x3 = reshape %x {shape = [T, 1, 64]}
  %gate_up = matmul_id %x3, %gu, %ids {act = q8_0}
  %g = slice %gate_up {axis = 2, start = 0, size = 64}
  %u = slice %gate_up {axis = 2, start = 64, size = 64}
  %a = swiglu %g, %u
  %d = matmul_id %a, %down, %ids {act = q8_0}
  %w3 = reshape %w {shape = [T, 2, 1]}
  %wd = mul %d, %w3
  %out = reduce_sum %wd {axis = 1}
  return %out
}
)";

struct Fixture {
  std::unique_ptr<Module> m;
  const Function *f = nullptr;
  std::map<std::string, Tensor> params; ///< the in-place params' memory
  std::vector<std::pair<const uint8_t *, size_t>> released;

  llvm::Error init() {
    auto mm = parseModuleString(kLayer);
    if (!mm)
      return mm.takeError();
    m = std::move(*mm);
    f = m->functions.front().get();
    for (const char *name : {"gate_inp", "gate", "up", "down"}) {
      const Value *a = f->lookupArgument(name);
      std::vector<int64_t> shape;
      for (auto &d : a->getType().dims)
        shape.push_back(*d.getConstant());
      auto t = randomSource(7)(*a, a->getType().elem, shape);
      if (!t)
        return t.takeError();
      params[name] = std::move(*t);
    }
    return llvm::Error::success();
  }
  const uint8_t *data(const std::string &name) {
    Tensor &t = params.at(name);
    return t.elem == ElemType::F32 ? reinterpret_cast<const uint8_t *>(t.f.data()) : t.raw.data();
  }
  std::unique_ptr<Binder> binder(const SymbolBindings &syms) {
    InPlaceSource inPlace = [this](const Value &a, ElemType,
                                   llvm::ArrayRef<int64_t>) -> llvm::Expected<const void *> {
      return params.count(a.getName()) ? data(a.getName()) : nullptr;
    };
    ReleaseFn release = [this](const void *p, size_t n) {
      released.push_back({static_cast<const uint8_t *>(p), n});
    };
    return std::make_unique<Binder>(*f, randomSource(3), syms, inPlace, release);
  }
  /// Bytes released from [p, p + n), checking no range is partly inside.
  size_t releasedFrom(const uint8_t *p, size_t n) {
    size_t sum = 0;
    for (auto [q, k] : released) {
      if (q >= p && q + k <= p + n)
        sum += k;
      else
        EXPECT_TRUE(q + k <= p || q >= p + n) << "a release straddles a tensor";
    }
    return sum;
  }
};

TEST(PackAtBind, ChunkedFromFeedsEqualsPackingOnTheFirstRun) {
  Fixture fx;
  ASSERT_FALSE(bool(fx.init()));
  auto exe = Executable::compile(*fx.f);
  ASSERT_TRUE(bool(exe)) << llvm::toString(exe.takeError());
  const Function &f = *fx.f;
  unsigned gu = f.lookupArgument("gu")->getArgIndex();
  for (int64_t T : {1, 7, 33}) {
    SCOPED_TRACE("T = " + std::to_string(T));
    SymbolBindings syms{{"T", T}};
    fx.released.clear();
    // The reference: whole arguments, packed by the run itself.
    auto b0 = fx.binder(syms);
    auto whole = b0->storedArgsForRank(0);
    ASSERT_TRUE(bool(whole)) << llvm::toString(whole.takeError());
    auto ref = (*exe)->runRaw(whole->ptrs, syms);
    ASSERT_TRUE(bool(ref)) << llvm::toString(ref.takeError());

    std::vector<bool> only = (*exe)->packedOnly(syms);
    for (const char *name : {"gate_inp", "down", "gu"})
      EXPECT_TRUE(only[f.lookupArgument(name)->getArgIndex()]) << name;
    EXPECT_FALSE(only[f.lookupArgument("x")->getArgIndex()]);
    auto b1 = fx.binder(syms);
    auto fed = b1->storedArgsForRank(0, only);
    ASSERT_TRUE(bool(fed)) << llvm::toString(fed.takeError());
    // gu is joined as it is packed: never built, never copied.
    EXPECT_EQ(fed->ptrs[gu], nullptr);
    EXPECT_EQ(fed->stats.copiedBytes, int64_t(T * 64 * 4));
    uint64_t version = Executable::newParamsVersion();
    // One expert per chunk.
    ASSERT_FALSE(bool((*exe)->packWeights(*fed, syms, version, nullptr, 1)));
    EXPECT_EQ(fed->stats.numPacked, 3u);
    for (const char *name : {"gate_inp", "down", "gu"})
      EXPECT_EQ(fed->ptrs[f.lookupArgument(name)->getArgIndex()], nullptr) << name;
    // Every byte of gate, up, down and the router released, once, in
    // 8 chunks each for the experts.
    EXPECT_EQ(fx.released.size(), 8u * 3 + 1);
    for (const char *name : {"gate_inp", "gate", "up", "down"}) {
      size_t n = fx.params.at(name).storedBytes().size();
      EXPECT_EQ(fx.releasedFrom(fx.data(name), n), n) << name;
    }
    RunOptions ro;
    ro.paramsVersion = version;
    for (int rep = 0; rep < 2; ++rep) {
      auto got = (*exe)->runRaw(fed->ptrs, syms, ro);
      ASSERT_TRUE(bool(got)) << llvm::toString(got.takeError());
      ASSERT_EQ((*got)[0].f.size(), (*ref)[0].f.size());
      EXPECT_EQ(0, std::memcmp((*got)[0].f.data(), (*ref)[0].f.data(),
                               (*ref)[0].f.size() * sizeof(float)));
    }
    // Without the packed copies the released arguments cannot be read.
    auto lost = (*exe)->runRaw(fed->ptrs, syms);
    ASSERT_FALSE(bool(lost));
    EXPECT_NE(llvm::toString(lost.takeError()).find("is null and no packed copy"),
              std::string::npos);
  }
}

} // namespace

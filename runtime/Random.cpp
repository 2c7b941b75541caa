//===- Random.cpp - Deterministic random tensors --------------------------===//
#include "runtime/Random.h"
#include "ir/Error.h"
#include "ir/OpInfo.h"

#include "fmt/format.h"

#include <cmath>

using namespace moe;

namespace {
uint64_t splitmix64(uint64_t &state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/// FNV-1a over bytes, continuing from `h`.
uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
  auto *p = static_cast<const uint8_t *>(data);
  for (size_t k = 0; k < n; ++k) {
    h ^= p[k];
    h *= 0x100000001b3ull;
  }
  return h;
}
} // namespace

llvm::Expected<Tensor> moe::randomTensor(uint64_t seed, llvm::StringRef name,
                                         ElemType elem, llvm::ArrayRef<int64_t> shape,
                                         bool isParam, int64_t idBound) {
  if (auto e = checkShape(elem, shape))
    return err("%{}: {}", name.str(), llvm::toString(std::move(e)));
  uint64_t h = fnv1a(0xcbf29ce484222325ull, &seed, sizeof seed);
  h = fnv1a(h, name.data(), name.size());
  // Float types share one stream (see Random.h); i32 has its own.
  uint8_t kind = elem == ElemType::I32 ? 1 : 0;
  h = fnv1a(h, &kind, 1);
  for (int64_t d : shape)
    h = fnv1a(h, &d, sizeof d);
  uint64_t state = h;

  int64_t n = 1, inner = shape.empty() ? 1 : shape.back();
  for (int64_t d : shape)
    n *= d;
  if (elem == ElemType::I32) {
    uint64_t range = (uint64_t)std::min<int64_t>(idBound > 0 ? idBound : inner, INT32_MAX);
    std::vector<int32_t> v(n);
    for (auto &x : v) // multiply-shift: uniform in [0, inner) without modulo bias
      x = (int32_t)(((splitmix64(state) >> 32) * range) >> 32);
    return Tensor::fromI32(shape, v);
  }
  float scale = isParam && inner > 0 ? 1.0f / std::sqrt((float)inner) : 1.0f;
  std::vector<float> v(n);
  for (auto &x : v) {
    // 24 random bits: k / 2^23 - 1 is exact in f32 and covers [-1, 1).
    float u = (float)(splitmix64(state) >> 40) * 0x1p-23f - 1.0f;
    x = u * scale;
  }
  return Tensor::fromF32(elem, shape, v);
}

llvm::Expected<std::vector<Tensor>> moe::randomArguments(const Function &f,
                                                         const SymbolBindings &syms,
                                                         uint64_t seed) {
  std::vector<Tensor> out;
  for (unsigned k = 0; k < f.getNumArguments(); ++k) {
    const Value *a = f.getArgument(k);
    auto shape = evaluateShape(a->getType(), syms);
    if (!shape)
      return err("argument %{}: {}", a->getName(), llvm::toString(shape.takeError()));
    auto t = randomTensor(seed, a->getName(), a->getType().elem, *shape, a->isParam(),
                          idBound(*a));
    if (!t)
      return t.takeError();
    out.push_back(std::move(*t));
  }
  return out;
}

int64_t moe::idBound(const Value &v) {
  int64_t bound = 0;
  auto take = [&](const DimExpr &d) {
    if (auto c = d.getConstant(); c && *c > 0)
      bound = bound ? std::min(bound, *c) : *c;
  };
  std::vector<const Value *> work{&v};
  for (size_t k = 0; k < work.size() && k < 64; ++k)
    for (auto &u : work[k]->getUses()) {
      const Operation &op = *u.user;
      if ((op.is(OpKind::MatmulId) || op.is(OpKind::AddId)) && u.index == 2)
        take(op.getOperand(1)->getType().dims[0]);
      else if (op.is(OpKind::Gather) && u.index == 1) {
        const TensorType &src = op.getOperand(0)->getType();
        if (auto a = normalizeAxis(op.attrs().getInt("axis", 0), src.rank()))
          take(src.dims[*a]);
      } else if (op.hasTrait(Trait::ViewLike) && u.index == 0)
        work.push_back(op.getResult());
    }
  return bound;
}

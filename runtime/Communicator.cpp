//===- Communicator.cpp - Collectives between SPMD ranks ------------------===//
#include "runtime/Communicator.h"
#include "runtime/Formats.h"

#include <vector>

using namespace moe;

Communicator::~Communicator() = default;

float moe::widen16(ElemType elem, uint16_t h) {
  return elem == ElemType::BF16 ? bf16ToF32(h) : f16ToF32(h);
}

uint16_t moe::narrow16(ElemType elem, float f) {
  return elem == ElemType::BF16 ? f32ToBF16(f) : f32ToF16(f);
}

llvm::Error moe::allReduceSumWidened(uint16_t *data, size_t n, ElemType elem,
                                     llvm::function_ref<llvm::Error(float *, size_t)> sumF32) {
  std::vector<float> wide(n);
  for (size_t i = 0; i < n; ++i)
    wide[i] = widen16(elem, data[i]);
  if (auto e = sumF32(wide.data(), n))
    return e;
  for (size_t i = 0; i < n; ++i)
    data[i] = narrow16(elem, wide[i]);
  return llvm::Error::success();
}

llvm::Error Communicator::allReduceSum(uint16_t *data, size_t n, ElemType elem) {
  return allReduceSumWidened(data, n, elem,
                             [this](float *d, size_t m) { return allReduceSum(d, m); });
}

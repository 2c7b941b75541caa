//===- Compare.cpp - The one output comparator and its tolerances ---------===//
#include "runtime/Compare.h"

#include "ir/Error.h"
#include "ir/IR.h"

#include <algorithm>
#include <cmath>

using namespace moe;

double moe::toleranceFor(ElemType e, double f32Tol) {
  switch (e) {
  case ElemType::I32: return 0;
  case ElemType::F16: return std::max(f32Tol, 2e-3);
  case ElemType::BF16: return std::max(f32Tol, 1.6e-2);
  default: return f32Tol;
  }
}

double moe::castTolerance(const Function &f) {
  double tol = 0;
  for (const Operation &op : f.getBody()) {
    if (!op.is(OpKind::Cast) || op.getOperand(0)->isArgument())
      continue;
    ElemType to = op.getResult()->getType().elem;
    tol = std::max(tol, to == ElemType::BF16 ? 0x1p-7 : to == ElemType::F16 ? 0x1p-10 : 0.0);
  }
  return tol;
}

namespace {
/// |a - b|, where non-finite values must be equal (NaN matches only NaN).
double elementDifference(double a, double b) {
  if (std::isnan(a) || std::isnan(b))
    return std::isnan(a) && std::isnan(b) ? 0 : INFINITY;
  if (!std::isfinite(a) || !std::isfinite(b))
    return a == b ? 0 : INFINITY;
  return std::fabs(a - b);
}
} // namespace

llvm::Expected<Difference> moe::compareTensors(const Tensor &got, const Tensor &ref) {
  if (got.elem != ref.elem)
    return err("element type {} vs {}", elemTypeName(got.elem).str(),
               elemTypeName(ref.elem).str());
  if (got.shape != ref.shape)
    return err("shape {} vs {}", got.shapeStr(), ref.shapeStr());
  Difference d;
  double maxRef = 0;
  auto visit = [&](size_t j, double a, double b) {
    double diff = elementDifference(a, b);
    if (diff != 0)
      ++d.numDiffer;
    if (diff > d.maxAbs || (d.worst < 0 && diff != 0)) {
      d.maxAbs = diff;
      d.worst = (int64_t)j;
    }
    if (std::isfinite(b))
      maxRef = std::max(maxRef, std::fabs(b));
  };
  if (ref.elem == ElemType::I32) {
    for (size_t j = 0; j < ref.i.size(); ++j)
      visit(j, got.i[j], ref.i[j]);
  } else {
    std::vector<float> x = got.toF32(), y = ref.toF32();
    for (size_t j = 0; j < y.size(); ++j)
      visit(j, x[j], y[j]);
  }
  d.error = d.maxAbs / std::max(maxRef, 1.0);
  return d;
}

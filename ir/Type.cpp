//===- Type.cpp - Tensor types --------------------------------------------===//
#include "ir/Type.h"

using namespace moe;

bool TensorType::isStatic() const {
  for (auto &d : dims)
    if (!d.isConstant())
      return false;
  return true;
}

std::optional<std::vector<int64_t>>
TensorType::evaluate(const SymbolBindings &b) const {
  std::vector<int64_t> r;
  for (auto &d : dims) {
    auto v = d.evaluate(b);
    if (!v)
      return std::nullopt;
    r.push_back(*v);
  }
  return r;
}

std::string TensorType::shapeStr() const {
  std::string s;
  for (auto &d : dims)
    s += (s.empty() ? "" : " x ") + d.str();
  return s;
}

std::string TensorType::str() const {
  std::string s = "tensor<";
  for (auto &d : dims)
    s += d.str() + " x ";
  return s + elemTypeName(elem).str() + ">";
}

/// Strides of dims of type D (an int64_t or a DimExpr), innermost 1.
template <typename D, typename Dims> static std::vector<D> rowMajor(const Dims &shape) {
  std::vector<D> s(shape.size(), D(1));
  for (int i = (int)shape.size() - 2; i >= 0; --i)
    s[i] = s[i + 1] * shape[i + 1];
  return s;
}

Shape moe::rowMajorStrides(const Shape &shape) { return rowMajor<DimExpr>(shape); }

std::vector<int64_t> moe::rowMajorStrides(llvm::ArrayRef<int64_t> shape) {
  return rowMajor<int64_t>(shape);
}

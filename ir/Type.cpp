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

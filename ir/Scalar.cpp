//===- Scalar.cpp - Scalar semantics of the elementwise ops ---------------===//
#include "ir/Scalar.h"

#include <algorithm>

using namespace moe;
using namespace moe::scalar;

Params scalar::readParams(const OpInfo &info, const AttrDict &attrs) {
  Params p;
  auto num = [&](const char *n, float &dst) {
    if (auto *a = info.attrOrDefault(attrs, n); a && a->isNumber())
      dst = (float)a->getNumber();
  };
  num("exponent", p.exponent);
  num("factor", p.factor);
  num("bias", p.bias);
  num("min", p.lo);
  num("max", p.hi);
  num("alpha", p.alpha);
  num("limit", p.limit);
  return p;
}

bool scalar::isUnary(OpKind k) {
  switch (k) {
  case OpKind::Neg: case OpKind::Exp: case OpKind::Log: case OpKind::Sqr:
  case OpKind::Sqrt: case OpKind::Rsqrt: case OpKind::Abs: case OpKind::Tanh:
  case OpKind::Sigmoid: case OpKind::Softplus: case OpKind::Relu: case OpKind::Silu:
  case OpKind::Gelu: case OpKind::GeluErf: case OpKind::Pow: case OpKind::Scale:
  case OpKind::Clamp:
    return true;
  default:
    return false;
  }
}

bool scalar::isBinary(OpKind k) {
  switch (k) {
  case OpKind::Add: case OpKind::Sub: case OpKind::Mul: case OpKind::Div:
  case OpKind::Max: case OpKind::Min:
    return true;
  default:
    return false;
  }
}

bool scalar::isGlu(OpKind k) {
  return k == OpKind::Swiglu || k == OpKind::Geglu || k == OpKind::SwigluOai;
}

float scalar::unary(OpKind k, const Params &p, float x) {
  switch (k) {
  case OpKind::Neg: return -x;
  case OpKind::Exp: return std::exp(x);
  case OpKind::Log: return std::log(x);
  case OpKind::Sqr: return x * x;
  case OpKind::Sqrt: return std::sqrt(x);
  case OpKind::Rsqrt: return 1.0f / std::sqrt(x);
  case OpKind::Abs: return std::fabs(x);
  case OpKind::Tanh: return std::tanh(x);
  case OpKind::Sigmoid: return sigmoid(x);
  case OpKind::Softplus: return softplus(x);
  case OpKind::Relu: return x > 0 ? x : 0.0f;
  case OpKind::Silu: return silu(x);
  case OpKind::Gelu: return gelu(x);
  case OpKind::GeluErf: return geluErf(x);
  case OpKind::Pow: return p.exponent == 2.0f ? x * x : std::pow(x, p.exponent);
  case OpKind::Scale: return x * p.factor + p.bias;
  case OpKind::Clamp: return std::min(std::max(x, p.lo), p.hi);
  default: return NAN;
  }
}

float scalar::binary(OpKind k, float a, float b) {
  switch (k) {
  case OpKind::Add: return a + b;
  case OpKind::Sub: return a - b;
  case OpKind::Mul: return a * b;
  case OpKind::Div: return a / b;
  case OpKind::Max: return std::max(a, b);
  case OpKind::Min: return std::min(a, b);
  default: return NAN;
  }
}

float scalar::glu(OpKind k, const Params &p, float g, float u) {
  switch (k) {
  case OpKind::Swiglu: return silu(g) * u;
  case OpKind::Geglu: return gelu(g) * u;
  case OpKind::SwigluOai: {
    float gc = std::min(g, p.limit);
    float uc = std::min(std::max(u, -p.limit), p.limit);
    return gc * sigmoid(p.alpha * gc) * (uc + 1.0f);
  }
  default: return NAN;
  }
}

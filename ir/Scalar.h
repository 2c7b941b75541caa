//===- Scalar.h - Scalar semantics of the elementwise ops -------*- C++ -*-===//
//
// The one definition of what each elementwise, GLU and unary op computes on
// a single f32 element. The interpreter, constant folding and the JIT's
// reference all use these, so they cannot drift apart.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/OpInfo.h"
#include <cmath>

namespace moe::scalar {

inline float silu(float x) { return x / (1.0f + std::exp(-x)); }
inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
/// ggml's tanh approximation.
inline float gelu(float x) {
  const float c = 0.7978845608028654f; // sqrt(2/pi)
  return 0.5f * x * (1.0f + std::tanh(c * x * (1.0f + 0.044715f * x * x)));
}
inline float geluErf(float x) { return 0.5f * x * (1.0f + std::erf(x * 0.7071067811865476f)); }
inline float softplus(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }

/// Parameters an elementwise op reads from its attributes, resolved once.
struct Params {
  float exponent = 1, factor = 1, bias = 0;
  float lo = -INFINITY, hi = INFINITY;
  float alpha = 1.702f, limit = 7.0f;
};

/// Reads the attributes of a unary/GLU op (with the op table's defaults).
Params readParams(const OpInfo &info, const AttrDict &attrs);

/// One element of a unary elementwise op (neg ... clamp, pow, scale).
float unary(OpKind k, const Params &p, float x);
/// One element of a binary elementwise op (add sub mul div max min).
float binary(OpKind k, float a, float b);
/// One element of a GLU (swiglu, geglu, swiglu_oai).
float glu(OpKind k, const Params &p, float g, float u);

bool isUnary(OpKind k);
bool isBinary(OpKind k);
bool isGlu(OpKind k);

} // namespace moe::scalar

//===- FastMath.h - Inline, vectorisable exp for the activations -*- C++ -*-===//
//
// Private to codegen/ (and its unit test). emitExpF32 emits e^x for an f32
// (or vector of f32) value as plain LLVM IR arithmetic, with no call, so
// LLVM's loop vectoriser turns a loop of them into vector code:
//
//   x clamped to [-104, 89] (NaN passes through);
//   n = round(x / ln 2) by the 1.5 * 2^23 shifter (no fptosi, so no poison
//   for NaN); r = x - n * C1 - n * C2, the Cody-Waite split of ln 2 (C1 has
//   9 significant bits, so n * C1 and x - n * C1 are exact);
//   e^r = 1 + r + r^2 * P(r), Cephes' degree-5 minimax P on |r| <= ln2/2;
//   2^n applied as two exponent-field scalings 2^(n/2) * 2^(n - n/2), each a
//   normal float, so results that overflow are +inf and those in the
//   denormal range are rounded once, not flushed.
//
// Accuracy, measured by tests/unit/FastExpTest.cpp over every 97th float of
// [-104, 89] and the specials: at most 2 ulp from std::exp (1 ulp in
// practice, see docs/JIT.md). x > 88.7228 gives +inf, x < -103.98 gives 0,
// +inf -> +inf, -inf -> 0, NaN -> NaN. No fused multiply-adds are formed
// (the builder sets no fast-math flags), so every target computes the same
// bits.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "llvm/IR/IRBuilder.h"

namespace moe::codegen {

/// e^x for `x` of type float or <N x float>, inline (see the file header).
llvm::Value *emitExpF32(llvm::IRBuilderBase &B, llvm::Value *x);

} // namespace moe::codegen

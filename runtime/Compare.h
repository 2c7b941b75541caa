//===- Compare.h - The one output comparator and its tolerances -*- C++ -*-===//
//
// How two runs of a function are compared, wherever moe compares them:
// `moe-run --check` (the JIT against the interpreter), `--verify-numerics`
// (a function before and after a pass) and the differential tests.
//
// The rule: an output `got` matches the reference `ref` (same element type,
// same shape) when
//
//   error = max |got - ref| / max(max |ref|, 1)  <=  tolerance(element type)
//
// with the maxima over the elements (max |ref| over the finite ones), so the
// error is relative for outputs of magnitude above 1 and absolute below.
// Non-finite values must match exactly: a NaN where the other has none, or an
// inf where the other has a different value, is an error of inf at that
// element (an inf or NaN in the reference never hides a difference).
//
// The tolerance table: i32 exact (0); f32 (and the block types, compared as
// f32) the caller's f32 tolerance (kF32Tolerance unless a flag or a test says
// otherwise); f16 and bf16 about two units in the last place of the type,
// 2e-3 and 1.6e-2, or the f32 tolerance when that is larger.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/Tensor.h"

#include "llvm/Support/Error.h"

#include <cstdint>

namespace moe {

class Function;

/// The default tolerance of f32 outputs: the JIT accumulates in f32 where
/// the interpreter accumulates in double.
inline constexpr double kF32Tolerance = 1e-4;

/// The tolerance of an output of type `e`, given the f32 one.
double toleranceFor(ElemType e, double f32Tol = kF32Tolerance);

/// One unit in the last place of the narrowest float type `f` casts a
/// computed value to (bf16 2^-7, f16 2^-10; 0 when it casts none): two runs
/// whose sums differ in the last bit (the JIT's f32 against the
/// interpreter's double, a pass that reassociates a sum) may round one
/// element of such a cast the other way. The differential checks (moe-smith,
/// --verify-numerics) allow it on top of the output's tolerance.
double castTolerance(const Function &f);

/// How far `got` is from `ref`.
struct Difference {
  double maxAbs = 0;   ///< max |got - ref| (inf when non-finite values differ)
  double error = 0;    ///< maxAbs / max(max finite |ref|, 1): the rule above
  int64_t numDiffer = 0; ///< elements that are not equal
  int64_t worst = -1;  ///< the element with the largest difference (-1: none)

  bool within(double tolerance) const { return error <= tolerance; }
};

/// Compares `got` with the reference `ref`; an error when their element
/// types or shapes differ.
llvm::Expected<Difference> compareTensors(const Tensor &got, const Tensor &ref);

} // namespace moe

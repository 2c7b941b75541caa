//===- Interpreter.h - The reference interpreter ----------------*- C++ -*-===//
//
// Evaluates a function on concrete tensors, op by op in body order, exactly
// as DESIGN.md ("Ops") defines each op. It is the oracle every pass
// (--verify-numerics) and the JIT are checked against, so it is written to be
// simple and reproducible rather than fast:
//
//  - Every sum (matmul/matmul_id dot products, reduce_sum/reduce_mean,
//    softmax's denominator, the norms' mean and variance) accumulates in
//    double, sequentially in increasing index order along the reduced axis,
//    and is rounded to f32 once at the end. Results are therefore
//    reproducible bit for bit and closer to the exact value than ggml's f32
//    accumulation (which the JIT's tolerance must cover).
//  - Elementwise, unary and GLU ops compute in f32 through ir/Scalar.h.
//  - f16/bf16 values are held as f32; every op result of type f16/bf16 is
//    rounded to that type (round to nearest even), as ggml stores it.
//  - Block-quantised weights (matmul/matmul_id weights, gather sources) are
//    dequantised row by row with runtime/Formats.h, never requantised.
//  - Bad input is an llvm::Error, never a crash or an out-of-bounds read:
//    unbound or out-of-range symbols, wrong argument count, type or shape,
//    ids out of range (naming the op, its result, the token and the id).
//    Before each op runs, its verifier (checkOp) is re-run on the concrete
//    operand shapes with symbols substituted and its result must equal the
//    IR type evaluated under the bindings, so an unverified or inconsistent
//    function is reported, not read out of bounds.
//
// Arguments are given in argument order with exactly their declared element
// type. A quantised param is given as its blocks (Tensor::raw); the caller
// quantises f32 data first (Tensor::fromF32 / Tensor::load(path, elem)).
// f16/bf16 arguments must hold representable values (Tensor::fromF32 rounds).
// Params are passed as this function sees them: an SPMD function's shards and
// derived params (ir/Spmd.h, ir/ParamDerive.h) are the caller's to compute,
// and rank-dependent symbols are bound by the caller (rankBindings).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/IR.h"
#include "runtime/Communicator.h"
#include "runtime/Tensor.h"

namespace moe {

struct InterpOptions {
  /// The ranks an `all_reduce` sums over; null means one rank (identity).
  Communicator *comm = nullptr;
};

/// Every declared symbol bound and inside its declared range, and no binding
/// for a symbol `f` does not declare.
llvm::Error checkSymbols(const Function &f, const SymbolBindings &syms);

/// `args` match `f`'s arguments in count, element type and concrete shape
/// (each argument's type evaluated under `syms`), and each is a consistent
/// Tensor (Tensor::validate). Symbols must have been checked.
llvm::Error checkArguments(const Function &f, llvm::ArrayRef<Tensor> args,
                           const SymbolBindings &syms);
/// The same for argument k alone.
llvm::Error checkArgument(const Function &f, unsigned k, const Tensor &t,
                          const SymbolBindings &syms);

/// Runs `f` on `args` (in argument order) under `syms`; returns the values of
/// its `return`, in order.
llvm::Expected<std::vector<Tensor>> interpret(const Function &f,
                                              llvm::ArrayRef<Tensor> args,
                                              const SymbolBindings &syms,
                                              const InterpOptions &opts = {});

} // namespace moe

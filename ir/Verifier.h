//===- Verifier.h - Structural and shape checks -----------------*- C++ -*-===//
//
// The verifier checks what the parser checks, for IR built or rewritten in
// memory: operands defined before use in the same function (and no cycles),
// operand counts, attributes against the op table, block-quantised values only
// where the table allows them, every result type equal to the inferred one,
// symbols declared with valid ranges, and the return matching the signature.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/Diagnostics.h"
#include "ir/IR.h"

namespace moe {

/// Checks one op's operand count, attributes (names, kinds, required ones),
/// block-quantised operands and shape rule; returns its result type.
/// `writtenType` is needed for ops whose type cannot be inferred (constant).
llvm::Expected<TensorType> checkOp(OpKind kind, llvm::ArrayRef<TensorType> operands,
                                   const AttrDict &attrs, const SymbolRanges &ranges,
                                   const TensorType *writtenType);

/// Checks the symbols a type uses are declared; returns the first unknown.
std::optional<std::string> undeclaredSymbol(const TensorType &t, const Function &f);

/// The first dim of `t` that is negative for some symbol value in `ranges`
/// (a dim over undeclared symbols is left to undeclaredSymbol).
std::optional<DimExpr> negativeDim(const TensorType &t, const SymbolRanges &ranges);
/// A message if a dim of `t` overflowed, or its element count (times 16
/// bytes) may exceed int64 within the symbols' ranges.
std::optional<std::string> sizeOverflow(const TensorType &t, const SymbolRanges &ranges);

/// Reports every problem through `diag`; returns true when the IR is valid.
bool verifyFunction(const Function &f, DiagEngine &diag);
bool verifyModule(const Module &m, DiagEngine &diag);

} // namespace moe

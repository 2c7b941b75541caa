//===- Builder.h - Creating operations with inferred types ------*- C++ -*-===//
//
// Passes and tests build ops through a Builder: it runs the op table's shape
// rule, so every created value has its inferred type, and inserts the op at
// the insertion point (before a given op, or at the end of the body).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/IR.h"

namespace moe {

class Builder {
public:
  explicit Builder(Function &f) : func(&f) {}

  /// New ops go right before `op` (or at the end of the body when null).
  void setInsertionPoint(Operation *op) { insertBefore = op; }
  void setInsertionPointAfter(Operation *op);
  void setInsertionPointToEnd() { insertBefore = nullptr; }
  void setLoc(llvm::SMLoc l) { loc = l; }

  /// Create with an inferred result type; an error if the shape rule fails.
  llvm::Expected<Operation *> create(OpKind kind, llvm::ArrayRef<Value *> operands,
                                     AttrDict attrs = {}, std::string nameHint = "");
  /// create(), for an op of one result: that result.
  llvm::Expected<Value *> createValue(OpKind kind, llvm::ArrayRef<Value *> operands,
                                      AttrDict attrs = {}, std::string nameHint = "");
  /// Create with an explicit result type (e.g. `constant`).
  Operation *createWithType(OpKind kind, llvm::ArrayRef<Value *> operands,
                            AttrDict attrs, TensorType type, std::string nameHint = "");
  /// A rank-0 (or splat) f32 constant.
  Value *constant(double v, TensorType type = TensorType({}, ElemType::F32),
                  std::string nameHint = "");

  Function &getFunction() { return *func; }

private:
  Operation *insert(std::unique_ptr<Operation> op);
  Function *func;
  Operation *insertBefore = nullptr;
  llvm::SMLoc loc;
};

/// The number a float splat constant holds (a number, or a list of equal
/// numbers): what Builder::constant makes, read back. Nullopt for any other
/// value, i32 constants included.
std::optional<double> splatValue(const Value *v);

/// Infers `kind`'s result type for these operands and attributes.
llvm::Expected<TensorType> inferResultType(OpKind kind, llvm::ArrayRef<TensorType> operands,
                                           const AttrDict &attrs,
                                           const SymbolRanges &ranges);

} // namespace moe

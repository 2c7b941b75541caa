//===- Builder.cpp - Creating operations with inferred types --------------===//
#include "ir/Builder.h"
#include "ir/Verifier.h"

using namespace moe;

llvm::Expected<TensorType> moe::inferResultType(OpKind kind,
                                                llvm::ArrayRef<TensorType> operands,
                                                const AttrDict &attrs,
                                                const SymbolRanges &ranges) {
  // The full op check (operand count, attribute specs, quantised operands,
  // shape rule), so a pass cannot build what the verifier would reject.
  return checkOp(kind, operands, attrs, ranges, nullptr);
}

void Builder::setInsertionPointAfter(Operation *op) {
  auto it = std::next(op->getIterator());
  insertBefore = it == func->getBody().end() ? nullptr : &*it;
}

Operation *Builder::insert(std::unique_ptr<Operation> op) {
  if (insertBefore)
    return func->insertBefore(insertBefore, std::move(op));
  // Keep `return` last when appending.
  if (Operation *ret = func->getReturn())
    return func->insertBefore(ret, std::move(op));
  return func->push_back(std::move(op));
}

llvm::Expected<Operation *> Builder::create(OpKind kind, llvm::ArrayRef<Value *> operands,
                                            AttrDict attrs, std::string nameHint) {
  std::vector<TensorType> types;
  for (auto *v : operands)
    types.push_back(v->getType());
  auto t = inferResultType(kind, types, attrs, func->symbolRanges());
  if (!t)
    return t.takeError();
  return createWithType(kind, operands, std::move(attrs), *t, std::move(nameHint));
}

Operation *Builder::createWithType(OpKind kind, llvm::ArrayRef<Value *> operands,
                                   AttrDict attrs, TensorType type, std::string nameHint) {
  std::vector<TensorType> types;
  if (getOpInfo(kind).numResults)
    types.push_back(std::move(type));
  auto op = Operation::create(kind, operands, std::move(attrs), types, loc);
  if (op->getNumResults())
    op->getResult()->setName(std::move(nameHint));
  return insert(std::move(op));
}

Value *Builder::constant(double v, TensorType type, std::string nameHint) {
  AttrDict a;
  a.set("value", Attribute::getFloat(v));
  return createWithType(OpKind::Constant, {}, std::move(a), std::move(type),
                        std::move(nameHint))
      ->getResult();
}

llvm::Expected<Value *> Builder::createValue(OpKind kind, llvm::ArrayRef<Value *> operands,
                                             AttrDict attrs, std::string nameHint) {
  auto op = create(kind, operands, std::move(attrs), std::move(nameHint));
  if (!op)
    return op.takeError();
  return (*op)->getResult();
}

std::optional<double> moe::splatValue(const Value *v) {
  const Operation *d = v->getDefiningOp();
  if (!d || !d->is(OpKind::Constant) || !isFloat(v->getType().elem))
    return std::nullopt;
  const Attribute *a = d->attrs().get("value");
  if (!a)
    return std::nullopt;
  if (a->isNumber())
    return a->getNumber();
  if (!a->isList() || a->getList().empty() || !a->getList()[0].isNumber())
    return std::nullopt;
  double first = a->getList()[0].getNumber();
  for (auto &e : a->getList())
    if (!e.isNumber() || e.getNumber() != first)
      return std::nullopt;
  return first;
}

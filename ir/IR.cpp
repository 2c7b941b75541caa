//===- IR.cpp - Values, operations, functions, modules --------------------===//
#include "ir/IR.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include <algorithm>

using namespace moe;

std::vector<Operation *> Value::getUsers() const {
  std::vector<Operation *> r;
  for (auto &u : uses)
    if (std::find(r.begin(), r.end(), u.user) == r.end())
      r.push_back(u.user);
  return r;
}

void Value::replaceAllUsesWith(Value *v) {
  if (v == this)
    return;
  auto copy = uses;
  for (auto &u : copy)
    u.user->setOperand(u.index, v);
}

std::unique_ptr<Operation> Operation::create(OpKind kind,
                                             llvm::ArrayRef<Value *> operands,
                                             AttrDict attrs,
                                             llvm::ArrayRef<TensorType> resultTypes,
                                             llvm::SMLoc loc) {
  std::unique_ptr<Operation> op(new Operation());
  op->kind = kind;
  op->attributes = std::move(attrs);
  op->loc = loc;
  op->operands.resize(operands.size(), nullptr);
  for (unsigned i = 0; i < operands.size(); ++i)
    op->setOperand(i, operands[i]);
  for (auto &t : resultTypes) {
    auto v = std::make_unique<Value>();
    v->type = t;
    v->defOp = op.get();
    v->loc = loc;
    op->results.push_back(std::move(v));
  }
  return op;
}

Operation::~Operation() { dropAllReferences(); }

void Operation::setOperand(unsigned i, Value *v) {
  if (Value *old = operands[i]) {
    auto &u = old->uses;
    u.erase(std::find(u.begin(), u.end(), Use{this, i}));
  }
  operands[i] = v;
  if (v)
    v->uses.push_back(Use{this, i});
}

void Operation::setOperands(llvm::ArrayRef<Value *> vs) {
  dropAllReferences();
  operands.assign(vs.size(), nullptr);
  for (unsigned i = 0; i < vs.size(); ++i)
    setOperand(i, vs[i]);
}

void Operation::dropAllReferences() {
  for (unsigned i = 0; i < operands.size(); ++i)
    if (operands[i])
      setOperand(i, nullptr);
}

void Operation::erase() {
  dropAllReferences();
  bool used = false;
  for (auto &r : results)
    used |= !r->use_empty();
  if (parent && used) { // a rewrite's bug: keep it for the verifier to report
    Function *f = parent;
    f->getBody().remove(this);
    parent = nullptr;
    f->erasedInUse.emplace_back(this);
  } else if (parent) {
    parent->getBody().erase(this);
  } else {
    delete this;
  }
}

Function::~Function() {
  // Operands may point at results of later ops; drop all uses first.
  for (auto &op : body)
    op.dropAllReferences();
}

Value *Function::addArgument(TensorType type, std::string n, AttrDict a) {
  auto v = std::make_unique<Value>();
  v->type = std::move(type);
  v->name = std::move(n);
  v->attrs = std::move(a);
  v->argIndex = args.size();
  args.push_back(std::move(v));
  return args.back().get();
}

std::vector<Value *> Function::getArguments() const {
  std::vector<Value *> r;
  for (auto &a : args)
    r.push_back(a.get());
  return r;
}

Value *Function::lookupArgument(llvm::StringRef n) const {
  for (auto &a : args)
    if (a->getName() == n)
      return a.get();
  return nullptr;
}

const SymbolDecl *Function::lookupSymbol(llvm::StringRef n) const {
  for (auto &s : syms)
    if (s.name == n)
      return &s;
  return nullptr;
}

SymbolRanges Function::symbolRanges() const {
  SymbolRanges r;
  for (auto &s : syms)
    r[s.name] = SymbolRange{s.lo, s.hi};
  return r;
}

Operation *Function::getReturn() const {
  if (body.empty())
    return nullptr;
  auto &last = const_cast<OpList &>(body).back();
  return last.is(OpKind::Return) ? &last : nullptr;
}

Operation *Function::push_back(std::unique_ptr<Operation> op) {
  op->parent = this;
  Operation *raw = op.release();
  body.push_back(raw);
  return raw;
}

Operation *Function::insertBefore(Operation *pos, std::unique_ptr<Operation> op) {
  op->parent = this;
  Operation *raw = op.release();
  body.insert(pos->getIterator(), raw);
  return raw;
}

Operation *Function::insertAfter(Operation *pos, std::unique_ptr<Operation> op) {
  op->parent = this;
  Operation *raw = op.release();
  body.insertAfter(pos->getIterator(), raw);
  return raw;
}

bool Function::sortTopologically() {
  // Kahn's algorithm seeded in body order, so a valid order is kept as is.
  std::vector<Operation *> ops;
  for (auto &op : body)
    ops.push_back(&op);
  llvm::DenseMap<Operation *, unsigned> pending;
  llvm::DenseSet<Operation *> inBody(ops.begin(), ops.end());
  for (auto *op : ops) {
    llvm::DenseSet<Operation *> deps;
    for (auto *v : op->getOperands())
      if (v && v->getDefiningOp() && inBody.count(v->getDefiningOp()))
        deps.insert(v->getDefiningOp());
    pending[op] = deps.size();
  }
  std::vector<Operation *> order;
  llvm::DenseSet<Operation *> done;
  // Repeatedly take the first ready op in the original order; O(n^2) worst
  // case, fine for layer-sized graphs, and stable.
  while (order.size() < ops.size()) {
    bool progressed = false;
    for (auto *op : ops) {
      if (done.count(op) || pending[op] != 0)
        continue;
      // The return op goes last.
      if (op->is(OpKind::Return) && order.size() + 1 < ops.size())
        continue;
      order.push_back(op);
      done.insert(op);
      progressed = true;
      for (unsigned r = 0; r < op->getNumResults(); ++r)
        for (auto *u : op->getResult(r)->getUsers())
          if (inBody.count(u))
            --pending[u];
      break;
    }
    if (!progressed)
      return false;
  }
  for (auto *op : order)
    body.remove(op);
  for (auto *op : order)
    body.push_back(op);
  return true;
}

std::unique_ptr<Function> Function::clone() const {
  auto f = std::make_unique<Function>(name);
  f->loc = loc;
  f->results = results;
  f->syms = syms;
  f->attributes = attributes;
  f->module = module;
  llvm::DenseMap<const Value *, Value *> map;
  for (auto &a : args) {
    Value *na = f->addArgument(a->type, a->name, a->attrs);
    na->loc = a->loc;
    map[a.get()] = na;
  }
  for (auto &op : body) {
    std::vector<Value *> operands;
    for (auto *v : op.getOperands())
      operands.push_back(map.lookup(v));
    std::vector<TensorType> types;
    for (auto &r : op.results)
      types.push_back(r->type);
    auto nop = Operation::create(op.kind, operands, op.attributes, types, op.loc);
    for (unsigned i = 0; i < op.results.size(); ++i) {
      nop->results[i]->name = op.results[i]->name;
      map[op.results[i].get()] = nop->results[i].get();
    }
    f->push_back(std::move(nop));
  }
  return f;
}

Function *Module::lookup(llvm::StringRef n) const {
  for (auto &f : functions)
    if (f->getName() == n)
      return f.get();
  return nullptr;
}

Function *Module::add(std::unique_ptr<Function> f) {
  f->setModule(this);
  functions.push_back(std::move(f));
  return functions.back().get();
}

std::unique_ptr<Module> Module::clone() const {
  auto m = std::make_unique<Module>();
  m->name = name;
  for (auto &f : functions)
    m->add(f->clone());
  return m;
}

std::vector<const Function *> Function::getVariants() const {
  std::vector<const Function *> out;
  const Attribute *a = attributes.get("variants");
  if (!a || !a->isList() || !module)
    return out;
  for (auto &n : a->getList())
    if (n.kind() == Attribute::Kind::String)
      if (const Function *v = module->lookup(n.getString()); v && v != this)
        out.push_back(v);
  return out;
}

const Function &Function::selectVariant(const SymbolBindings &syms) const {
  for (const Function *v : getVariants())
    if (variantCovers(*v, syms))
      return *v;
  return *this;
}

bool Function::variantCovers(const Function &v, const SymbolBindings &syms) const {
  for (auto &s : v.symbols()) {
    const SymbolDecl *mine = lookupSymbol(s.name);
    if (mine && mine->lo == s.lo && mine->hi == s.hi)
      continue; // not narrowed (a rank-dependent F, say)
    auto it = syms.find(s.name);
    if (it == syms.end() || it->second < s.lo || it->second > s.hi)
      return false;
  }
  return true;
}

void Module::clearLocations() {
  for (auto &f : functions) {
    f->setLoc({});
    for (auto *a : f->getArguments())
      a->setLoc({});
    for (auto &op : f->getBody()) {
      op.setLoc({});
      for (unsigned i = 0; i < op.getNumResults(); ++i)
        op.getResult(i)->setLoc({});
    }
    for (auto &s : f->symbols())
      s.loc = {};
  }
}

std::string Operation::getLabel() const {
  std::string s = getName().str();
  if (getNumResults() > 0)
    s += " %" + getResult(0)->getName();
  return s;
}

//===- Interpreter.cpp - The reference interpreter ------------------------===//
//
// The driver: checks symbols and arguments, then walks the body in order.
// For each op it
//   1. evaluates the op's symbolic attributes (slice start, reshape/view
//      shapes) and its result type under the bindings;
//   2. re-runs the op's verifier on the concrete operand types, and requires
//      the concrete result type it infers to equal the evaluated IR type;
//   3. allocates the result and calls the op's function from the table
//      built from Ops.def;
//   4. rounds an f16/bf16 result to its type, and frees operands whose last
//      use this was.
// The op functions live in Interp{Linear,Elementwise,Reduce,Shape}.cpp.
//
//===----------------------------------------------------------------------===//
#include "runtime/InterpInternal.h"
#include "ir/Error.h"

#include "ir/Verifier.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringSet.h"

#include <algorithm>
#include <iterator>
#include <memory>

using namespace moe;
using namespace moe::interp;

//===----------------------------------------------------------------------===//
// Ctx and index helpers
//===----------------------------------------------------------------------===//

std::string Ctx::where() const { return op.getLabel(); }

int64_t Ctx::intAttr(llvm::StringRef name, int64_t dflt) const {
  auto *a = attr(name);
  return a && a->isInt() ? a->getInt() : dflt;
}

double Ctx::numAttr(llvm::StringRef name, double dflt) const {
  auto *a = attr(name);
  return a && a->isNumber() ? a->getNumber() : dflt;
}

std::vector<int64_t> Ctx::intsAttr(llvm::StringRef name) const {
  auto *a = attr(name);
  auto v = a ? a->asInts() : std::nullopt;
  return v ? *v : std::vector<int64_t>{};
}

llvm::Expected<int64_t> Ctx::axisAttr(int64_t rank, llvm::StringRef name) const {
  auto *a = attr(name);
  if (!a || !a->isInt())
    return error("requires integer attribute '{}'", name.str());
  auto ax = normalizeAxis(a->getInt(), rank);
  if (!ax)
    return error("{} {} is out of range for rank {}", name.str(), a->getInt(), rank);
  return *ax;
}

int64_t interp::product(llvm::ArrayRef<int64_t> dims) {
  int64_t n = 1;
  for (int64_t d : dims)
    n *= d;
  return n;
}


AxisSplit interp::splitAt(llvm::ArrayRef<int64_t> shape, int64_t axis) {
  return {product(shape.take_front(axis)), shape[axis], product(shape.drop_front(axis + 1))};
}

std::vector<int64_t> interp::broadcastStrides(llvm::ArrayRef<int64_t> from,
                                              llvm::ArrayRef<int64_t> to) {
  std::vector<int64_t> own = rowMajorStrides(from), s(to.size(), 0);
  size_t lead = to.size() - from.size();
  for (size_t d = 0; d < from.size(); ++d)
    s[lead + d] = from[d] == 1 && to[lead + d] != 1 ? 0 : own[d];
  return s;
}

std::vector<float> interp::broadcastValues(const Tensor &t, llvm::ArrayRef<int64_t> shape) {
  std::vector<float> v(product(shape));
  walk<1>(shape, {broadcastStrides(t.shape, shape)}, {0},
          [&](int64_t flat, const std::array<int64_t, 1> &o) { v[flat] = t.f[o[0]]; });
  return v;
}


llvm::Error interp::interpReturn(Ctx &c) {
  return c.error("is handled by the interpreter loop");
}

//===----------------------------------------------------------------------===//
// The op table
//===----------------------------------------------------------------------===//

static const InterpFn kInterp[] = {
#define OP(E, N, MIN, MAX, NRES, TRAITS, QUANT, ATTRS, SHAPE, SUMMARY) interp##E,
#include "ir/Ops.def"
};
static constexpr size_t kNumOps = 0
#define OP(E, N, MIN, MAX, NRES, TRAITS, QUANT, ATTRS, SHAPE, SUMMARY) +1
#include "ir/Ops.def"
    ;
static_assert(std::size(kInterp) == kNumOps, "one interpreter function per op");

//===----------------------------------------------------------------------===//
// Checks
//===----------------------------------------------------------------------===//

llvm::Error moe::checkSymbols(const Function &f, const SymbolBindings &syms) {
  for (auto &s : f.symbols()) {
    auto it = syms.find(s.name);
    if (it == syms.end())
      return err("symbol {} of @{} is not bound (declared in [{}, {}])", s.name,
                 f.getName(), s.lo, s.hi);
    if (it->second < s.lo || it->second > s.hi)
      return err("symbol {} = {} is outside its range [{}, {}]", s.name, it->second, s.lo,
                 s.hi);
  }
  // Report unknown bindings in name order, so the message is deterministic.
  std::vector<std::string> unknown;
  for (auto &kv : syms)
    if (!f.lookupSymbol(kv.getKey()))
      unknown.push_back(kv.getKey().str());
  std::sort(unknown.begin(), unknown.end());
  if (!unknown.empty())
    return err("symbol {} is bound but @{} declares no such symbol", unknown.front(),
               f.getName());
  return llvm::Error::success();
}

static std::string bindingsStr(const Function &f, const SymbolBindings &syms) {
  std::string s;
  for (auto &d : f.symbols()) {
    auto it = syms.find(d.name);
    if (it != syms.end())
      s += fmt::format("{}{} = {}", s.empty() ? "" : ", ", d.name, it->second);
  }
  return s;
}

llvm::Error moe::checkArgument(const Function &f, unsigned k, const Tensor &t,
                               const SymbolBindings &syms) {
  const Value &a = *f.getArgument(k);
  const TensorType &ty = a.getType();
  auto want = evaluateShape(ty, syms);
  if (!want)
    return err("argument %{}: {}", a.getName(), llvm::toString(want.takeError()));
  if (t.elem != ty.elem)
    return err("argument %{}: expected element type {} ({}), got a {} tensor{}", a.getName(),
               elemTypeName(ty.elem).str(), ty.str(), elemTypeName(t.elem).str(),
               isQuantized(ty.elem) ? "; quantise f32 data with Tensor::fromF32 first" : "");
  if (t.shape != *want)
    return err("argument %{}: expected shape {} ({}{}{}), got {}", a.getName(),
               formatShape(*want), ty.str(), f.symbols().empty() ? "" : " with ",
               bindingsStr(f, syms), t.shapeStr());
  if (auto e = t.validate())
    return err("argument %{}: {}", a.getName(), llvm::toString(std::move(e)));
  return llvm::Error::success();
}

llvm::Error moe::checkArguments(const Function &f, llvm::ArrayRef<Tensor> args,
                                const SymbolBindings &syms) {
  if (args.size() != f.getNumArguments())
    return err("@{} takes {} argument{}, got {}", f.getName(), f.getNumArguments(),
               f.getNumArguments() == 1 ? "" : "s", args.size());
  for (unsigned k = 0; k < args.size(); ++k)
    if (auto e = checkArgument(f, k, args[k], syms))
      return e;
  return llvm::Error::success();
}

/// The attributes with every symbolic dim (also inside lists) evaluated.
static llvm::Expected<Attribute> evaluateAttr(const Attribute &a,
                                              const SymbolBindings &syms) {
  if (a.kind() == Attribute::Kind::Dim) {
    auto v = evaluateDim(a.getDim(), syms);
    if (!v)
      return v.takeError();
    return Attribute::getInt(*v);
  }
  if (a.isList()) {
    std::vector<Attribute> l;
    for (auto &e : a.getList()) {
      auto v = evaluateAttr(e, syms);
      if (!v)
        return v.takeError();
      l.push_back(std::move(*v));
    }
    return Attribute::getList(std::move(l));
  }
  return a;
}

//===----------------------------------------------------------------------===//
// The loop
//===----------------------------------------------------------------------===//

namespace {

std::string typesStr(llvm::ArrayRef<TensorType> ts) {
  std::string s;
  for (auto &t : ts)
    s += (s.empty() ? "" : ", ") + t.str();
  return s;
}

/// Prepares and runs one op (steps 1-4 of the file comment).
llvm::Error runOp(const Function &f, const Operation &op, llvm::ArrayRef<const Tensor *> in,
                  const SymbolBindings &syms, const InterpOptions &opts, Tensor &out) {
  if (op.getNumResults() != 1)
    return err("{}: ops with {} results are not supported", op.getLabel(),
               op.getNumResults());
  AttrDict attrs;
  for (auto &[name, a] : op.attrs()) {
    auto v = evaluateAttr(a, syms);
    if (!v)
      return err("{}: attribute '{}': {}", op.getLabel(), name,
                 llvm::toString(v.takeError()));
    attrs.set(name, std::move(*v));
  }
  const TensorType &resTy = op.getResult(0)->getType();
  auto shape = evaluateShape(resTy, syms);
  if (!shape)
    return err("{}: result type: {}", op.getLabel(), llvm::toString(shape.takeError()));
  if (isQuantized(resTy.elem))
    return err("{}: a block-quantised result is not supported", op.getLabel());
  if (auto e = checkShape(resTy.elem, *shape))
    return err("{}: result: {}", op.getLabel(), llvm::toString(std::move(e)));

  std::vector<TensorType> concrete;
  for (const Tensor *t : in) {
    Shape dims;
    for (int64_t d : t->shape)
      dims.push_back(DimExpr(d));
    concrete.emplace_back(std::move(dims), t->elem);
  }
  Shape resDims;
  for (int64_t d : *shape)
    resDims.push_back(DimExpr(d));
  TensorType written(resDims, resTy.elem);
  auto inferred = checkOp(op.getKind(), concrete, attrs, SymbolRanges(), &written);
  if (!inferred)
    return err("{}: {} (concrete operand types {}{}{})", op.getLabel(),
               llvm::toString(inferred.takeError()), typesStr(concrete),
               f.symbols().empty() ? "" : " with ", bindingsStr(f, syms));
  if (*inferred != written)
    return err("{}: its type {} is {} under the bindings, but its concrete operands ({}) "
               "give {}",
               op.getLabel(), resTy.str(), written.str(), typesStr(concrete),
               inferred->str());
  out = Tensor::zeros(resTy.elem, *shape);
  Ctx c{op, llvm::SmallVector<const Tensor *, 4>(in.begin(), in.end()), std::move(attrs),
        out, syms, opts};
  if (auto e = kInterp[(size_t)op.getKind()](c))
    return e;
  out.roundToElemType();
  return llvm::Error::success();
}
} // namespace

llvm::Expected<std::vector<Tensor>> moe::interpret(const Function &f,
                                                   llvm::ArrayRef<Tensor> args,
                                                   const SymbolBindings &syms,
                                                   const InterpOptions &opts) {
  if (auto e = checkSymbols(f, syms))
    return e;
  // A function specialised by symbol range runs its variant there.
  if (const Function &v = f.selectVariant(syms); &v != &f)
    return interpret(v, args, syms, opts);
  if (auto e = checkArguments(f, args, syms))
    return e;

  llvm::DenseMap<const Value *, const Tensor *> env;
  llvm::DenseMap<const Value *, std::unique_ptr<Tensor>> owned;
  llvm::DenseMap<const Value *, size_t> usesLeft;
  for (unsigned k = 0; k < f.getNumArguments(); ++k)
    env[f.getArgument(k)] = &args[k];

  for (const Operation &op : f.getBody()) {
    std::vector<const Tensor *> in;
    for (unsigned k = 0; k < op.getNumOperands(); ++k) {
      auto it = env.find(op.getOperand(k));
      if (it == env.end())
        return err("{}: operand #{} (%{}) is used before it is computed", op.getLabel(), k,
                   op.getOperand(k)->getName());
      in.push_back(it->second);
    }

    if (op.is(OpKind::Return)) {
      std::vector<Tensor> results;
      for (const Tensor *t : in)
        results.push_back(*t);
      return results;
    }

    auto out = std::make_unique<Tensor>();
    if (auto e = runOp(f, op, in, syms, opts, *out))
      return e;
    const Value *res = op.getResult(0);
    usesLeft[res] = res->getUses().size();
    env[res] = out.get();
    owned[res] = std::move(out);

    // Free intermediates after their last use (arguments belong to the caller).
    for (unsigned k = 0; k < op.getNumOperands(); ++k) {
      const Value *v = op.getOperand(k);
      auto it = usesLeft.find(v);
      if (it != usesLeft.end() && it->second > 0 && --it->second == 0) {
        env.erase(v);
        owned.erase(v);
      }
    }
    if (res->use_empty()) {
      env.erase(res);
      owned.erase(res);
    }
  }
  return err("@{} has no return", f.getName());
}

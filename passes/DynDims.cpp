//===- DynDims.cpp - Dynamic-dim propagation ------------------------------===//
//
// A graph captured at a concrete token count (say 7) has that 7 baked into
// every result type and into shape attributes (reshape targets, view shapes
// and strides, broadcast/repeat counts, full-axis slices). Given which input
// axes are dynamic (`dyn-dims{T=x:0}`: symbol T is axis 0 of %x), this pass
// replaces those input dims by the symbol and re-derives every result type
// along use-def chains (a topological walk), rewriting each attribute whose
// dims flow from a dynamic axis; dims that do not (a coincidental 7 in a
// weight shape) stay static. An op whose attributes cannot be re-derived is
// reported with its reason (whyNotRederive; `view` strides are re-read
// against rowMajorStrides, ir/Type.h), and then the function is left
// unchanged, so the IR stays valid. Needs nothing before it; run it first.
//
//===----------------------------------------------------------------------===//
#include "passes/Pass.h"
#include "ir/Builder.h"
#include "ir/Error.h"

#include "fmt/format.h"
#include "llvm/ADT/DenseMap.h"

using namespace moe;

namespace {

/// A dynamic axis: symbol `sym` is axis `axis` of argument `arg`, captured
/// with the concrete value `captured`.
struct DynAxis {
  std::string sym, arg;
  int64_t axis, captured = 0;
};

class DynDimsPass : public Pass {
public:
  explicit DynDimsPass(const PassOptions &) {}
  Statistic numDims{this, "num-dims-resymbolised", "result and attribute dims made symbolic"};
  Statistic numBlocked{this, "num-ops-blocked", "ops that blocked propagation"};

  llvm::Expected<bool> runOnFunction(Function &f, PassContext &ctx) override;

private:
  /// Old (captured) concrete shape and new symbolic shape of each value.
  llvm::DenseMap<const Value *, TensorType> newType;
  std::vector<DynAxis> axes;

  Refusal whyNotRederive(const Operation &op, const std::vector<TensorType> &newOps,
                         AttrDict &attrs);
  std::optional<Shape> reshapeTarget(const TensorType &oldIn, const TensorType &newIn,
                                     const Shape &oldTarget);
  std::optional<DimExpr> repeatCount(const DimExpr &old) const;
};

std::optional<DimExpr> DynDimsPass::repeatCount(const DimExpr &old) const {
  // A broadcast/splat count equal to a captured token count is that count:
  // the only way a graph repeats something once per token.
  for (auto &a : axes)
    if (old.isConstant(a.captured))
      return DimExpr::symbol(a.sym);
  return std::nullopt;
}

/// Groups input and output dims of a reshape into runs with equal captured
/// products, then gives each output run the new product of its input run,
/// putting the symbolic factor on the one output dim that divides exactly.
std::optional<Shape> DynDimsPass::reshapeTarget(const TensorType &oldIn,
                                                const TensorType &newIn,
                                                const Shape &oldTarget) {
  Shape out;
  size_t i = 0, j = 0, n = oldIn.dims.size(), m = oldTarget.size();
  auto cst = [](const DimExpr &d) { return *d.getConstant(); };
  while (i < n || j < m) {
    size_t i0 = i, j0 = j;
    int64_t pi = 1, po = 1;
    if (i < n)
      pi *= cst(oldIn.dims[i++]);
    if (j < m)
      po *= cst(oldTarget[j++]);
    while (pi != po) {
      if (pi < po && i < n)
        pi *= cst(oldIn.dims[i++]);
      else if (j < m)
        po *= cst(oldTarget[j++]);
      else
        return std::nullopt;
    }
    // Trailing size-1 output dims join this run.
    while (j < m && cst(oldTarget[j]) == 1 && i == n)
      ++j;
    DimExpr newProd(1);
    for (size_t k = i0; k < i; ++k)
      newProd = newProd * newIn.dims[k];
    if (newProd.isConstant()) {
      out.insert(out.end(), oldTarget.begin() + j0, oldTarget.begin() + j);
      continue;
    }
    // Prefer the output dim whose captured size equals a dynamic input dim's.
    std::vector<size_t> order;
    for (size_t k = j0; k < j; ++k)
      for (size_t q = i0; q < i; ++q)
        if (!newIn.dims[q].isConstant() && oldTarget[k] == oldIn.dims[q])
          order.push_back(k);
    for (size_t k = j0; k < j; ++k)
      order.push_back(k);
    bool placed = false;
    for (size_t k : order) {
      DimExpr others(1);
      for (size_t q = j0; q < j; ++q)
        if (q != k)
          others = others * oldTarget[q];
      if (auto d = newProd.divExact(others)) {
        for (size_t q = j0; q < j; ++q)
          out.push_back(q == k ? *d : oldTarget[q]);
        placed = true;
        break;
      }
    }
    if (!placed)
      return std::nullopt;
  }
  return out;
}

/// Re-derives `op`'s attributes (`attrs`, a copy of them) for the new
/// operand types; the reason it cannot, the diagnostic's text, or none.
Refusal DynDimsPass::whyNotRederive(const Operation &op, const std::vector<TensorType> &newOps,
                                    AttrDict &attrs) {
  auto oldIn = [&](unsigned i) -> const TensorType & { return op.getOperand(i)->getType(); };
  switch (op.getKind()) {
  case OpKind::Reshape: {
    auto oldTarget = attrs.get("shape")->asDims();
    if (!oldIn(0).isStatic() || !oldTarget || !TensorType(*oldTarget, ElemType::F32).isStatic())
      return std::nullopt;
    auto t = reshapeTarget(oldIn(0), newOps[0], *oldTarget);
    if (!t)
      return fmt::format("cannot re-derive reshape target {} from input {}",
                         attrs.get("shape")->str(), newOps[0].str());
    attrs.set("shape", Attribute::getDims(*t));
    return std::nullopt;
  }
  case OpKind::Broadcast: {
    auto target = *attrs.get("shape")->asDims();
    const Shape &in = newOps[0].dims;
    size_t lead = target.size() - in.size();
    for (size_t k = 0; k < target.size(); ++k) {
      if (k >= lead && !in[k - lead].isConstant(1))
        target[k] = in[k - lead];
      else if (auto r = repeatCount(target[k]))
        target[k] = *r;
    }
    attrs.set("shape", Attribute::getDims(target));
    return std::nullopt;
  }
  case OpKind::Slice: {
    auto axis = normalizeAxis(attrs.getInt("axis", 0), oldIn(0).rank());
    if (!axis)
      return std::nullopt;
    const DimExpr &oldDim = oldIn(0).dims[*axis], &newDim = newOps[0].dims[*axis];
    if (oldDim == newDim)
      return std::nullopt;
    // Only a slice of the whole axis follows the axis.
    if (op.getAttr("start")->getDim().isConstant(0) && op.getAttr("size")->getDim() == oldDim) {
      attrs.set("size", Attribute::getDim(newDim));
      return std::nullopt;
    }
    return fmt::format("slices part of axis {} ({} of {}), which becomes dynamic ({})", *axis,
                       op.getAttr("size")->str(), oldDim.str(), newDim.str());
  }
  case OpKind::View: {
    if (oldIn(0) == newOps[0])
      return std::nullopt;
    auto shape = *attrs.get("shape")->asDims();
    auto strides = *attrs.get("strides")->asDims();
    DimExpr offset = op.getAttr("offset")->getDim();
    auto oldShapeC = *oldIn(0).evaluate({});
    auto oldStrides = rowMajorStrides(oldShapeC);
    auto newStrides = rowMajorStrides(newOps[0].dims);
    // Each stride must be the layout stride of some input axis; a view dim
    // spanning that whole axis follows its new size.
    for (size_t k = 0; k < strides.size(); ++k) {
      auto s = strides[k].getConstant();
      if (!s)
        return std::string("view stride is already symbolic");
      int match = -1;
      for (size_t a = 0; a < oldStrides.size(); ++a)
        if (oldStrides[a] == *s && (shape[k] == oldIn(0).dims[a] || match < 0))
          match = a;
      if (match < 0 && shape[k].isConstant(1))
        continue;
      if (match < 0)
        return fmt::format("view stride {} is not a stride of the input's layout", *s);
      strides[k] = newStrides[match];
      if (shape[k] == oldIn(0).dims[match])
        shape[k] = newOps[0].dims[match];
    }
    // The offset, as a mixed-radix index over the input's axes.
    auto off = offset.getConstant();
    if (!off)
      return std::string("view offset is already symbolic");
    DimExpr newOffset(0);
    int64_t rest = *off;
    for (size_t a = 0; a < oldStrides.size(); ++a) {
      newOffset = newOffset + newStrides[a] * DimExpr(rest / oldStrides[a]);
      rest %= oldStrides[a];
    }
    attrs.set("shape", Attribute::getDims(shape));
    attrs.set("strides", Attribute::getDims(strides));
    if (attrs.has("offset") || !newOffset.isConstant(0))
      attrs.set("offset", Attribute::getDim(newOffset));
    return std::nullopt;
  }
  default:
    return std::nullopt;
  }
}

llvm::Expected<bool> DynDimsPass::runOnFunction(Function &f, PassContext &ctx) {
  axes.clear();
  newType.clear();
  int64_t lo = getOptions().getInt("min", 1), hi = getOptions().getInt("max", 65536);
  for (auto &e : getOptions().values) {
    llvm::StringRef key = e.getKey();
    if (key == "min" || key == "max")
      continue;
    auto [arg, axisText] = llvm::StringRef(e.getValue()).split(':');
    DynAxis a{key.str(), arg.str(), 0};
    if (axisText.getAsInteger(10, a.axis))
      return err("dyn-dims: '{}={}' must be SYMBOL=ARG:AXIS", key.str(), e.getValue());
    axes.push_back(a);
  }
  std::sort(axes.begin(), axes.end(), [](auto &a, auto &b) { return a.sym < b.sym; });
  if (axes.empty())
    return false; // the signature's symbols are already propagated by the verifier

  // 1. Symbolise the input axes.
  for (auto *arg : f.getArguments())
    newType[arg] = arg->getType();
  for (auto &a : axes) {
    Value *arg = f.lookupArgument(a.arg);
    auto ax = arg ? normalizeAxis(a.axis, arg->getType().rank()) : std::nullopt;
    if (!arg || !ax) {
      ctx.diag.error(f.getLoc(), fmt::format("dyn-dims: function @{} has no argument axis %{}:{}",
                                             f.getName(), a.arg, a.axis));
      return false;
    }
    auto c = arg->getType().dims[*ax].getConstant();
    if (!c) {
      ctx.diag.error(arg->getLoc(), fmt::format("dyn-dims: axis {} of %{} is already symbolic "
                                                "({})", *ax, a.arg,
                                                arg->getType().dims[*ax].str()));
      return false;
    }
    if (f.lookupSymbol(a.sym)) {
      ctx.diag.error(f.getLoc(), fmt::format("dyn-dims: symbol '{}' is already declared", a.sym));
      return false;
    }
    a.captured = *c;
    newType[arg].dims[*ax] = DimExpr::symbol(a.sym);
  }
  SymbolRanges ranges = f.symbolRanges();
  for (auto &a : axes)
    ranges[a.sym] = SymbolRange{std::min(lo, a.captured), std::max(hi, a.captured)};

  // 2. Re-derive every type along use-def chains (the body is a topological
  //    order; every operand's new type is known before its user).
  llvm::DenseMap<Operation *, AttrDict> newAttrs;
  unsigned blocked = 0;
  for (auto &op : f.getBody()) {
    if (op.is(OpKind::Return))
      continue;
    std::vector<TensorType> ops;
    bool known = true;
    for (auto *v : op.getOperands()) {
      auto it = newType.find(v);
      known &= it != newType.end();
      if (known)
        ops.push_back(it->second);
    }
    if (!known)
      continue; // downstream of a blocked op: not reported twice
    AttrDict attrs = op.attrs();
    Refusal why = whyNotRederive(op, ops, attrs);
    TensorType t = op.getResult()->getType();
    if (!why && op.is(OpKind::Constant)) {
      for (auto &d : t.dims)
        if (auto r = repeatCount(d))
          d = *r;
    } else if (!why) {
      auto r = inferResultType(op.getKind(), ops, attrs, ranges);
      if (r)
        t = *r;
      else
        why = llvm::toString(r.takeError());
    }
    if (why) {
      ++blocked;
      ctx.diag.opError(&op, "blocks dynamic dims: " + *why);
      continue;
    }
    newAttrs[&op] = std::move(attrs);
    newType[op.getResult()] = t;
  }
  if (blocked) {
    numBlocked += blocked;
    return false; // nothing was changed: the IR is still the captured one
  }

  // 3. Commit: symbols, argument and result types, attributes.
  for (auto &a : axes)
    f.symbols().push_back(SymbolDecl{a.sym, ranges[a.sym].lo, ranges[a.sym].hi, f.getLoc()});
  auto countDims = [&](const TensorType &o, const TensorType &n) {
    for (size_t k = 0; k < o.dims.size(); ++k)
      if (o.dims[k] != n.dims[k])
        ++numDims;
  };
  for (auto *arg : f.getArguments()) {
    countDims(arg->getType(), newType[arg]);
    arg->setType(newType[arg]);
  }
  for (auto &op : f.getBody()) {
    if (op.is(OpKind::Return))
      continue;
    countDims(op.getResult()->getType(), newType[op.getResult()]);
    op.getResult()->setType(newType[op.getResult()]);
    op.attrs() = newAttrs[&op];
  }
  if (Operation *ret = f.getReturn())
    for (unsigned i = 0; i < ret->getNumOperands(); ++i)
      f.resultTypes()[i] = ret->getOperand(i)->getType();
  return true;
}

} // namespace

std::unique_ptr<Pass> moe::createDynDimsPass(const PassOptions &o) {
  return std::make_unique<DynDimsPass>(o);
}

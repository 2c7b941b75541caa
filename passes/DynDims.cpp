//===- DynDims.cpp - Dynamic-dim propagation ------------------------------===//
//
// A graph captured at a concrete token count (say 7) has that 7 baked into
// every result type and into shape attributes (reshape targets, view shapes
// and strides, broadcast/repeat counts, full-axis slices). Given which input
// axes are dynamic (`dyn-dims{T=x:0}`: symbol T is axis 0 of %x; several
// inputs may carry one symbol, `dyn-dims{T=x:0,T=logits:0}`), this pass
// replaces those input dims by the symbol and re-derives every result type
// along use-def chains, deciding which dims are T by provenance, never by
// value: a dim is T only when it comes from a dynamic axis through the ops'
// shape rules. Each dim is tracked as its factors, outermost first (a static
// size, or a symbolic factor with its captured value), so a reshape keeps
// the symbolic factor on the dim whose digit of the row-major index holds it
// ([k, T, n] -> [k*T, n] -> [k, T, n] at T = k as at any T).
//
// Where one op admits several re-derivations (a factor captured at 1 that may
// sit in any of several size-1 dims; a repeat count equal to the captured
// count) the pass searches the combinations and keeps those under which the
// whole function re-derives, preferring repeat counts that stay static; if
// two consistent ways differ, or none exists, the function is refused with a
// located diagnostic on the op (whyNotRederive) and left unchanged.
// Needs nothing before it; run it first.
//
//===----------------------------------------------------------------------===//
#include "passes/Pass.h"
#include "ir/Builder.h"
#include "ir/Error.h"

#include "fmt/format.h"
#include "fmt/ranges.h"
#include "llvm/ADT/DenseMap.h"

using namespace moe;

namespace {

/// A dynamic axis: symbol `sym` is axis `axis` of argument `arg`, captured
/// with the concrete value `captured`.
struct DynAxis {
  std::string sym, arg;
  int64_t axis, captured = 0;
};

/// A factor of a dim: a static size, or a symbolic expression (a symbol, or
/// a sum such as T+7 that cannot be factored further) with its value when
/// captured (0 when unknown).
struct Atom {
  DimExpr e;
  int64_t captured;
};
using Atoms = std::vector<Atom>; ///< outermost first; no static 1s

/// What the walk knows of a value: its new type and each dim's factors.
struct Derived {
  TensorType type;
  std::vector<Atoms> atoms;
};

/// One way to re-derive an op: its attributes (or a constant's type), the
/// number of repeat counts it takes to be a symbol without provenance, and
/// for a reshape the factors of each result dim.
struct Candidate {
  AttrDict attrs;
  std::optional<TensorType> type;
  unsigned guesses = 0;
  std::optional<std::vector<Atoms>> atoms;
};

Atoms atomsOf(const DimExpr &e, int64_t captured) {
  if (e.isConstant(1))
    return {};
  return {Atom{e, e.isConstant() ? *e.getConstant() : captured}};
}

class DynDimsPass : public Pass {
public:
  explicit DynDimsPass(const PassOptions &) {}
  Statistic numDims{this, "num-dims-resymbolised", "result and attribute dims made symbolic"};
  Statistic numBlocked{this, "num-ops-blocked", "ops that blocked propagation"};

  llvm::Expected<bool> runOnFunction(Function &f, PassContext &ctx) override;

private:
  std::vector<DynAxis> axes;
  SymbolRanges ranges;
  std::vector<Operation *> ops;
  llvm::DenseMap<const Value *, Derived> cur; ///< along the current search path
  std::vector<AttrDict> curAttrs;
  std::vector<TensorType> curTypes;
  /// The consistent re-derivations with the fewest guesses (at most two
  /// distinct ones are kept: two mean ambiguity).
  unsigned bestGuesses = ~0u;
  std::vector<std::pair<std::vector<AttrDict>, std::vector<TensorType>>> best;
  /// The refusal reached furthest into the body, reported when nothing fits.
  size_t failIndex = 0;
  Refusal failWhy;
  int64_t budget = 0;

  void search(size_t i, unsigned guesses);
  Refusal whyNotRederive(const Operation &op, const std::vector<Derived> &in,
                         std::vector<Candidate> &out);
  Refusal reshapeCandidates(const Operation &op, const Derived &in, const Shape &oldTarget,
                            std::vector<Candidate> &out);
  std::vector<DimExpr> repeatChoices(const DimExpr &old) const;
  std::vector<Atoms> resultAtoms(const Operation &op, const std::vector<Derived> &in,
                                 const TensorType &t) const;
};

/// The ways a static count `old` (a repeat count, a constant's dim) may be
/// read: itself first, then each symbol captured at that value.
std::vector<DimExpr> DynDimsPass::repeatChoices(const DimExpr &old) const {
  std::vector<DimExpr> r{old};
  for (auto &a : axes)
    if (old.isConstant(a.captured) &&
        std::find(r.begin(), r.end(), DimExpr::symbol(a.sym)) == r.end())
      r.push_back(DimExpr::symbol(a.sym));
  return r;
}

/// Every combination of `choices` (one list per dim), the count of non-first
/// picks of each; at most `cap` combinations.
std::vector<std::pair<Shape, unsigned>> combinations(const std::vector<std::vector<DimExpr>> &choices,
                                                     size_t cap) {
  std::vector<std::pair<Shape, unsigned>> out{{{}, 0}};
  for (auto &c : choices) {
    std::vector<std::pair<Shape, unsigned>> next;
    for (auto &[s, g] : out)
      for (size_t k = 0; k < c.size() && next.size() < cap; ++k) {
        Shape t = s;
        t.push_back(c[k]);
        next.push_back({t, g + (k > 0)});
      }
    out = std::move(next);
  }
  std::stable_sort(out.begin(), out.end(), [](auto &a, auto &b) { return a.second < b.second; });
  return out;
}

/// The ways to re-derive a reshape's target: every symbolic factor of the
/// input must lie inside one result dim as a digit of the row-major index
/// (with P the captured product of the factors outside it and Q_j that of
/// the dims before result dim j: Q_j | P_i and P_i * c_i | Q_j+1); a factor
/// captured at 1 may sit in any dim that allows it, in order, one candidate
/// per placement.
Refusal DynDimsPass::reshapeCandidates(const Operation &op, const Derived &in,
                                       const Shape &oldTarget, std::vector<Candidate> &out) {
  std::vector<Atom> seq;
  for (auto &d : in.atoms)
    seq.insert(seq.end(), d.begin(), d.end());
  size_t s = seq.size(), m = oldTarget.size();
  std::vector<int64_t> P(s + 1, 1), Q(m + 1, 1);
  for (size_t i = 0; i < s; ++i)
    P[i + 1] = P[i] * seq[i].captured;
  for (size_t j = 0; j < m; ++j)
    Q[j + 1] = Q[j] * *oldTarget[j].getConstant();
  auto cannot = [&](const std::string &why) {
    return fmt::format("cannot re-derive reshape target {} from input {}: {}",
                       op.getAttr("shape")->str(), in.type.str(), why);
  };
  if (P[s] != Q[m])
    return cannot("the captured element counts differ");
  std::vector<size_t> symIdx;
  std::vector<std::vector<size_t>> where;
  for (size_t i = 0; i < s; ++i) {
    if (seq[i].e.isConstant())
      continue;
    std::vector<size_t> js;
    for (size_t j = 0; j < m; ++j)
      if (P[i] % Q[j] == 0 && Q[j + 1] % P[i + 1] == 0)
        js.push_back(j);
    if (js.empty())
      return cannot(fmt::format("{} ({} when captured) would be split over several dims",
                                seq[i].e.str(), seq[i].captured));
    symIdx.push_back(i);
    where.push_back(std::move(js));
  }
  // Placements, in order (a factor never lands before an earlier one).
  std::vector<std::vector<size_t>> placements{{}};
  for (auto &js : where) {
    std::vector<std::vector<size_t>> next;
    for (auto &p : placements)
      for (size_t j : js)
        if (p.empty() || j >= p.back()) {
          next.push_back(p);
          next.back().push_back(j);
        }
    placements = std::move(next);
    if (placements.size() > 64)
      return cannot("too many ways to place the size-1 symbolic factors");
  }
  for (auto &pl : placements) {
    Shape target;
    std::vector<Atoms> atoms(m);
    for (size_t j = 0; j < m; ++j) {
      int64_t prev = Q[j];
      DimExpr d(1);
      auto addStatic = [&](int64_t f) {
        if (f != 1)
          atoms[j].push_back(Atom{DimExpr(f), f});
        d = d * DimExpr(f);
      };
      for (size_t q = 0; q < symIdx.size(); ++q) {
        if (pl[q] != j)
          continue;
        size_t i = symIdx[q];
        addStatic(P[i] / prev);
        atoms[j].push_back(seq[i]);
        d = d * seq[i].e;
        prev = P[i + 1];
      }
      addStatic(Q[j + 1] / prev);
      target.push_back(d);
    }
    bool seen = false;
    for (auto &c : out)
      seen |= *c.attrs.get("shape")->asDims() == target;
    if (seen)
      continue;
    Candidate c{op.attrs(), std::nullopt, 0, atoms};
    c.attrs.set("shape", Attribute::getDims(target));
    out.push_back(std::move(c));
  }
  return std::nullopt;
}

/// The ways to re-derive `op`'s attributes for its operands' new types `in`
/// (appended to `out`, fewest guesses first); the reason there is none, the
/// diagnostic's text.
Refusal DynDimsPass::whyNotRederive(const Operation &op, const std::vector<Derived> &in,
                                    std::vector<Candidate> &out) {
  auto oldIn = [&](unsigned i) -> const TensorType & { return op.getOperand(i)->getType(); };
  AttrDict attrs = op.attrs();
  switch (op.getKind()) {
  case OpKind::Reshape: {
    auto oldTarget = attrs.get("shape")->asDims();
    if (oldIn(0).isStatic() && oldTarget && TensorType(*oldTarget, ElemType::F32).isStatic())
      return reshapeCandidates(op, in[0], *oldTarget, out);
    break;
  }
  case OpKind::Broadcast: {
    // A dim the input has (not 1) follows it; a repeat count may be T only
    // when nothing else fits (a count that meets nothing dynamic stays).
    auto target = *attrs.get("shape")->asDims();
    const Shape &newIn = in[0].type.dims;
    size_t lead = target.size() - newIn.size();
    std::vector<std::vector<DimExpr>> choices;
    for (size_t k = 0; k < target.size(); ++k) {
      if (k >= lead && !newIn[k - lead].isConstant(1))
        choices.push_back({newIn[k - lead]});
      else
        choices.push_back(repeatChoices(target[k]));
    }
    for (auto &[shape, g] : combinations(choices, 16)) {
      Candidate c{attrs, std::nullopt, g, std::nullopt};
      c.attrs.set("shape", Attribute::getDims(shape));
      out.push_back(std::move(c));
    }
    return std::nullopt;
  }
  case OpKind::Constant: {
    TensorType t = op.getResult()->getType();
    std::vector<std::vector<DimExpr>> choices;
    for (auto &d : t.dims)
      choices.push_back(repeatChoices(d));
    for (auto &[shape, g] : combinations(choices, 16))
      out.push_back(Candidate{attrs, TensorType(shape, t.elem), g, std::nullopt});
    return std::nullopt;
  }
  case OpKind::Slice: {
    auto axis = normalizeAxis(attrs.getInt("axis", 0), oldIn(0).rank());
    if (!axis)
      break;
    const DimExpr &oldDim = oldIn(0).dims[*axis], &newDim = in[0].type.dims[*axis];
    if (oldDim == newDim)
      break;
    // Only a slice of the whole axis follows the axis.
    if (op.getAttr("start")->getDim().isConstant(0) && op.getAttr("size")->getDim() == oldDim) {
      attrs.set("size", Attribute::getDim(newDim));
      break;
    }
    return fmt::format("slices part of axis {} ({} of {}), which becomes dynamic ({})", *axis,
                       op.getAttr("size")->str(), oldDim.str(), newDim.str());
  }
  case OpKind::View: {
    if (oldIn(0) == in[0].type || !oldIn(0).isStatic())
      break;
    auto shape = *attrs.get("shape")->asDims();
    auto strides = *attrs.get("strides")->asDims();
    DimExpr offset = op.getAttr("offset")->getDim();
    auto oldShapeC = *oldIn(0).evaluate({});
    auto oldStrides = rowMajorStrides(oldShapeC);
    auto newStrides = rowMajorStrides(in[0].type.dims);
    // Each stride must be the layout stride of some input axis; a view dim
    // spanning that whole axis follows its new size.
    for (size_t k = 0; k < strides.size(); ++k) {
      auto st = strides[k].getConstant();
      if (!st)
        return std::string("view stride is already symbolic");
      int match = -1;
      for (size_t a = 0; a < oldStrides.size(); ++a)
        if (oldStrides[a] == *st && (shape[k] == oldIn(0).dims[a] || match < 0))
          match = a;
      if (match < 0 && shape[k].isConstant(1))
        continue;
      if (match < 0)
        return fmt::format("view stride {} is not a stride of the input's layout", *st);
      strides[k] = newStrides[match];
      if (shape[k] == oldIn(0).dims[match])
        shape[k] = in[0].type.dims[match];
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
    break;
  }
  default:
    break;
  }
  out.push_back(Candidate{std::move(attrs), std::nullopt, 0, std::nullopt});
  return std::nullopt;
}

/// The factors of each dim of `op`'s new result type `t`: a dim equal to an
/// operand's dim has that dim's factors; a concat of equal parts is the
/// part count outside the part's factors; anything else is one factor.
std::vector<Atoms> DynDimsPass::resultAtoms(const Operation &op, const std::vector<Derived> &in,
                                            const TensorType &t) const {
  const TensorType &old = op.getResult()->getType();
  std::vector<Atoms> r;
  for (size_t k = 0; k < t.dims.size(); ++k) {
    int64_t captured = old.dims[k].getConstant().value_or(0);
    const Atoms *from = nullptr;
    for (size_t q = 0; q < in.size() && !from; ++q)
      for (size_t a = 0; a < in[q].type.dims.size() && !from; ++a)
        if (in[q].type.dims[a] == t.dims[k] &&
            op.getOperand(q)->getType().dims[a].getConstant().value_or(0) == captured)
          from = &in[q].atoms[a];
    if (from) {
      r.push_back(*from);
      continue;
    }
    if (op.is(OpKind::Concat) && !t.dims[k].isConstant()) {
      auto axis = normalizeAxis(op.attrs().getInt("axis", 0), t.rank());
      bool equal = axis && *axis == (int64_t)k;
      for (auto &d : in)
        equal &= d.type.dims[k] == in[0].type.dims[k];
      if (equal) {
        int64_t n = in.size();
        Atoms a = atomsOf(DimExpr(n), n);
        auto &part = in[0].atoms[k];
        a.insert(a.end(), part.begin(), part.end());
        r.push_back(a);
        continue;
      }
    }
    r.push_back(atomsOf(t.dims[k], captured));
  }
  return r;
}

/// Depth-first over the body in order, one candidate per op; records each
/// complete re-derivation with the fewest guesses.
void DynDimsPass::search(size_t i, unsigned guesses) {
  if (--budget < 0 || guesses > bestGuesses || (guesses == bestGuesses && best.size() > 1))
    return;
  if (i == ops.size()) {
    if (guesses < bestGuesses) {
      bestGuesses = guesses;
      best.clear();
    }
    if (best.size() < 2)
      best.push_back({curAttrs, curTypes});
    return;
  }
  const Operation &op = *ops[i];
  std::vector<Derived> in;
  for (auto *v : op.getOperands())
    in.push_back(cur.find(v)->second);
  auto fail = [&](Refusal why) {
    if (!failWhy || i > failIndex) {
      failIndex = i;
      failWhy = std::move(why);
    }
  };
  std::vector<Candidate> cands;
  if (Refusal why = whyNotRederive(op, in, cands))
    return fail(why);
  std::vector<TensorType> inTypes;
  for (auto &d : in)
    inTypes.push_back(d.type);
  for (auto &c : cands) {
    TensorType t;
    if (c.type) {
      t = *c.type;
    } else {
      auto r = inferResultType(op.getKind(), inTypes, c.attrs, ranges);
      if (!r) {
        fail(llvm::toString(r.takeError()));
        continue;
      }
      t = *r;
    }
    std::vector<Atoms> atoms = c.atoms ? *c.atoms : resultAtoms(op, in, t);
    cur[op.getResult()] = Derived{t, std::move(atoms)};
    curAttrs[i] = c.attrs;
    curTypes[i] = t;
    search(i + 1, guesses + c.guesses);
  }
}

llvm::Expected<bool> DynDimsPass::runOnFunction(Function &f, PassContext &ctx) {
  axes.clear();
  int64_t lo = getOptions().getInt("min", 1), hi = getOptions().getInt("max", 65536);
  for (auto &[key, value] : getOptions().entries) {
    if (key == "min" || key == "max")
      continue;
    auto [arg, axisText] = llvm::StringRef(value).split(':');
    DynAxis a{key, arg.str(), 0};
    if (axisText.getAsInteger(10, a.axis))
      return err("dyn-dims: '{}={}' must be SYMBOL=ARG:AXIS", key, value);
    axes.push_back(a);
  }
  if (axes.empty())
    return false; // the signature's symbols are already propagated by the verifier

  // 1. Symbolise the input axes; inputs tied to one symbol must agree.
  cur.clear();
  for (auto *arg : f.getArguments()) {
    Derived d{arg->getType(), {}};
    for (auto &dim : d.type.dims)
      d.atoms.push_back(atomsOf(dim, dim.getConstant().value_or(0)));
    cur[arg] = d;
  }
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
    a.axis = *ax;
    a.captured = *c;
    for (auto &b : axes)
      if (&b != &a && b.sym == a.sym && b.captured && b.captured != *c) {
        ctx.diag.error(f.getLoc(), fmt::format("dyn-dims: %{}:{} and %{}:{} are tied to {} but "
                                               "were captured at {} and {}", b.arg, b.axis,
                                               a.arg, a.axis, a.sym, b.captured, *c));
        return false;
      }
    cur[arg].type.dims[*ax] = DimExpr::symbol(a.sym);
    cur[arg].atoms[*ax] = {Atom{DimExpr::symbol(a.sym), *c}};
  }
  ranges = f.symbolRanges();
  for (auto &a : axes)
    ranges[a.sym] = SymbolRange{std::min(lo, a.captured), std::max(hi, a.captured)};

  // 2. Search the re-derivations along use-def chains (the body is a
  //    topological order: every operand is derived before its user).
  ops.clear();
  for (auto &op : f.getBody())
    if (!op.is(OpKind::Return))
      ops.push_back(&op);
  curAttrs.assign(ops.size(), AttrDict());
  curTypes.assign(ops.size(), TensorType());
  best.clear();
  bestGuesses = ~0u;
  failWhy.reset();
  failIndex = 0;
  budget = 200000;
  search(0, 0);
  auto refuse = [&](Operation *op, const std::string &why) {
    ++numBlocked;
    // A remark, not an error: the function stays as captured (static), which
    // is correct at the captured size and refused by shape checks at any other.
    if (op)
      ctx.diag.opRemark(op, "blocks dynamic dims: " + why);
    else
      ctx.diag.remark(f.getLoc(), "dyn-dims: " + why);
    return false; // nothing was changed: the IR is still the captured one
  };
  if (budget < 0)
    return refuse(nullptr, fmt::format("@{} has too many ways to re-derive its dims (more "
                                       "than 200000 steps)", f.getName()));
  if (best.empty())
    return refuse(ops[failIndex], *failWhy);
  if (best.size() > 1) {
    auto &[a0, t0] = best[0];
    auto &[a1, t1] = best[1];
    size_t i = 0;
    while (a0[i] == a1[i] && t0[i] == t1[i])
      ++i;
    auto show = [&](const AttrDict &a, const TensorType &t) {
      std::string s = a.str();
      return s.empty() ? t.str() : s.substr(2, s.size() - 3);
    };
    std::vector<std::string> syms;
    for (auto &a : axes)
      if (std::find(syms.begin(), syms.end(), a.sym) == syms.end())
        syms.push_back(a.sym);
    return refuse(ops[i], fmt::format("cannot tell which dim is {}: {} and {} both re-derive",
                                      fmt::join(syms, " or "), show(a0[i], t0[i]),
                                      show(a1[i], t1[i])));
  }

  // 3. Commit: symbols, argument and result types, attributes.
  for (auto &a : axes)
    if (!f.lookupSymbol(a.sym))
      f.symbols().push_back(SymbolDecl{a.sym, ranges[a.sym].lo, ranges[a.sym].hi, f.getLoc()});
  auto countDims = [&](const TensorType &o, const TensorType &n) {
    for (size_t k = 0; k < o.dims.size(); ++k)
      if (o.dims[k] != n.dims[k])
        ++numDims;
  };
  for (auto *arg : f.getArguments()) {
    countDims(arg->getType(), cur[arg].type);
    arg->setType(cur[arg].type);
  }
  auto &[attrs, types] = best[0];
  for (size_t i = 0; i < ops.size(); ++i) {
    countDims(ops[i]->getResult()->getType(), types[i]);
    ops[i]->getResult()->setType(types[i]);
    ops[i]->attrs() = attrs[i];
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

//===- ShapeRules.cpp - Result-type rules of the op table -----------------===//
//
// Semantics follow ggml's with dims reversed (see DESIGN.md, "Ops"). Every rule
// compares dims symbolically: `T` equals `T`, never `7`.
//
//===----------------------------------------------------------------------===//
#include "ir/ShapeRules.h"
#include "ir/Error.h"

#include "fmt/format.h"

using namespace moe;
using llvm::ArrayRef;
using llvm::Expected;

namespace {
std::string shapeOf(const TensorType &t) { return t.str(); }

llvm::Error requireFloat(const TensorType &t, unsigned idx) {
  if (!isFloat(t.elem) || isQuantized(t.elem))
    return err("operand #{} must be f32, f16 or bf16, got {}", idx, shapeOf(t));
  return llvm::Error::success();
}

llvm::Error requireI32(const TensorType &t, llvm::StringRef what) {
  if (t.elem != ElemType::I32)
    return err("{} must be i32, got {}", what.str(), shapeOf(t));
  return llvm::Error::success();
}

llvm::Error requireRank(const TensorType &t, int64_t rank, llvm::StringRef what) {
  if (t.rank() != rank)
    return err("{} must have rank {}, got {}", what.str(), rank, shapeOf(t));
  return llvm::Error::success();
}

llvm::Error requireDimEq(const DimExpr &a, const DimExpr &b, llvm::StringRef what) {
  if (a != b)
    return err("{} mismatch: {} vs {}", what.str(), a.str(), b.str());
  return llvm::Error::success();
}

Expected<int64_t> axisAttr(const OpInfo &info, const AttrDict &attrs,
                           int64_t rank, llvm::StringRef name = "axis") {
  auto *a = info.attrOrDefault(attrs, name);
  if (!a || !a->isInt())
    return err("requires integer attribute '{}'", name.str());
  auto ax = normalizeAxis(a->getInt(), rank);
  if (!ax)
    return err("{} {} is out of range for rank {}", name.str(), a->getInt(), rank);
  return *ax;
}

#define TRY(e)                                                                 \
  if (auto E_ = (e))                                                           \
    return E_;

/// `act` of a matmul/matmul_id against its weight type and contraction dim K:
/// f32 always; otherwise exactly the weight type's vecDotType, and for q8_0
/// activations (blocks of 32 along K) K a multiple of 32.
llvm::Error checkAct(const AttrDict &attrs, const TensorType &w, const DimExpr &K) {
  auto *a = attrs.get("act");
  if (!a)
    return llvm::Error::success();
  auto act = a->kind() == Attribute::Kind::Ident ? parseElemType(a->getIdent())
                                                 : std::nullopt;
  if (!act)
    return err("attribute 'act' must be an element type, got {}", a->str());
  if (*act != ElemType::F32 && *act != ElemType::BF16 && *act != ElemType::Q8_0)
    return err("act = {} is not an activation precision (f32, bf16 or q8_0)",
               a->getIdent());
  if (*act != ElemType::F32 && *act != vecDotType(w.elem))
    return err("act = {} needs {} weights, got {}", a->getIdent(),
               *act == ElemType::Q8_0 ? "q8_0, q4_0 or mxfp4" : "bf16", shapeOf(w));
  if (*act == ElemType::Q8_0 && !K.isMultipleOf(32))
    return err("act = q8_0 needs the contraction dim K to be a multiple of 32, got {}",
               K.str());
  return llvm::Error::success();
}
} // namespace

ElemType moe::activationType(const OpInfo &info, const AttrDict &attrs) {
  auto *a = info.attrOrDefault(attrs, "act");
  if (!a || a->kind() != Attribute::Kind::Ident)
    return ElemType::F32;
  return parseElemType(a->getIdent()).value_or(ElemType::F32);
}

ElemType moe::vecDotType(ElemType weight) {
  if (isQuantized(weight))
    return ElemType::Q8_0;
  return weight == ElemType::BF16 ? ElemType::BF16 : ElemType::F32;
}

std::optional<Shape> moe::broadcastShapes(const Shape &a, const Shape &b) {
  size_t n = std::max(a.size(), b.size());
  Shape r(n);
  for (size_t i = 0; i < n; ++i) {
    const DimExpr *da = i < n - a.size() ? nullptr : &a[i - (n - a.size())];
    const DimExpr *db = i < n - b.size() ? nullptr : &b[i - (n - b.size())];
    if (!da)
      r[i] = *db;
    else if (!db)
      r[i] = *da;
    else if (*da == *db)
      r[i] = *da;
    else if (da->isConstant(1))
      r[i] = *db;
    else if (db->isConstant(1))
      r[i] = *da;
    else
      return std::nullopt;
  }
  return r;
}

bool moe::provablyLE(const DimExpr &d, const DimExpr &bound, const SymbolRanges &r) {
  auto b = (bound - d).bounds(r);
  return b && b->first >= 0;
}

namespace moe::shape_rules {

Expected<TensorType> inferMatmul(const OpInfo &, ArrayRef<TensorType> ops,
                                 const AttrDict &attrs, const SymbolRanges &) {
  auto &x = ops[0], &w = ops[1];
  TRY(requireFloat(x, 0));
  if (x.rank() < 2)
    return err("operand #0 must have rank >= 2 ([..., M, K]), got {}", shapeOf(x));
  TRY(requireRank(w, 2, "weight (operand #1, [N, K])"));
  if (w.elem == ElemType::I32)
    return err("weight must be a float or quantised type, got {}", shapeOf(w));
  TRY(requireDimEq(x.dims.back(), w.dims[1], "contraction dim K (x[..., K] vs w[N, K])"));
  TRY(checkAct(attrs, w, x.dims.back()));
  Shape r(x.dims.begin(), x.dims.end() - 1);
  r.push_back(w.dims[0]);
  return TensorType(r, ElemType::F32);
}

Expected<TensorType> inferMatmulId(const OpInfo &, ArrayRef<TensorType> ops,
                                   const AttrDict &attrs, const SymbolRanges &) {
  auto &x = ops[0], &w = ops[1], &ids = ops[2];
  TRY(requireFloat(x, 0));
  TRY(requireRank(x, 3, "input (operand #0, [T, B, K])"));
  TRY(requireRank(w, 3, "expert weights (operand #1, [E, N, K])"));
  if (w.elem == ElemType::I32)
    return err("expert weights must be a float or quantised type");
  TRY(requireRank(ids, 2, "ids (operand #2, [T, k])"));
  TRY(requireI32(ids, "ids (operand #2)"));
  TRY(requireDimEq(x.dims[0], ids.dims[0], "token dim T (x vs ids)"));
  if (!x.dims[1].isConstant(1) && x.dims[1] != ids.dims[1])
    return err("input dim B must be 1 or k = {}, got {}", ids.dims[1].str(),
               x.dims[1].str());
  TRY(requireDimEq(x.dims[2], w.dims[2], "contraction dim K (x[T, B, K] vs w[E, N, K])"));
  TRY(checkAct(attrs, w, x.dims[2]));
  return TensorType({x.dims[0], ids.dims[1], w.dims[1]}, ElemType::F32);
}

Expected<TensorType> inferAddId(const OpInfo &, ArrayRef<TensorType> ops,
                                const AttrDict &, const SymbolRanges &) {
  auto &x = ops[0], &b = ops[1], &ids = ops[2];
  TRY(requireFloat(x, 0));
  TRY(requireFloat(b, 1));
  TRY(requireRank(x, 3, "input (operand #0, [T, k, N])"));
  TRY(requireRank(b, 2, "bias (operand #1, [E, N])"));
  TRY(requireRank(ids, 2, "ids (operand #2, [T, k])"));
  TRY(requireI32(ids, "ids (operand #2)"));
  TRY(requireDimEq(x.dims[0], ids.dims[0], "token dim T (x vs ids)"));
  TRY(requireDimEq(x.dims[1], ids.dims[1], "expert slot dim k (x vs ids)"));
  TRY(requireDimEq(x.dims[2], b.dims[1], "dim N (x vs bias)"));
  return x;
}

Expected<TensorType> inferBroadcast(const OpInfo &info, ArrayRef<TensorType> ops,
                                    const AttrDict &, const SymbolRanges &) {
  auto &a = ops[0], &b = ops[1];
  if (a.elem != b.elem)
    return err("element types differ: {} vs {}", shapeOf(a), shapeOf(b));
  if (isQuantized(a.elem))
    return err("operands cannot be block-quantised");
  auto s = broadcastShapes(a.dims, b.dims);
  if (!s)
    return err("cannot broadcast {} with {}", shapeOf(a), shapeOf(b));
  return TensorType(*s, a.elem);
}

Expected<TensorType> inferUnaryFloat(const OpInfo &, ArrayRef<TensorType> ops,
                                     const AttrDict &, const SymbolRanges &) {
  TRY(requireFloat(ops[0], 0));
  return ops[0];
}

Expected<TensorType> inferCast(const OpInfo &, ArrayRef<TensorType> ops,
                               const AttrDict &attrs, const SymbolRanges &) {
  auto *to = attrs.get("to");
  if (!to || to->kind() != Attribute::Kind::Ident)
    return err("requires attribute 'to' naming an element type");
  auto e = parseElemType(to->getIdent());
  if (!e)
    return err("unknown element type '{}'", to->getIdent());
  if (isQuantized(*e) || isQuantized(ops[0].elem))
    return err("cannot cast to or from a block-quantised type");
  return TensorType(ops[0].dims, *e);
}

Expected<TensorType> inferGlu(const OpInfo &, ArrayRef<TensorType> ops,
                              const AttrDict &, const SymbolRanges &) {
  TRY(requireFloat(ops[0], 0));
  TRY(requireFloat(ops[1], 1));
  if (ops[0] != ops[1])
    return err("gate and up must have the same type: {} vs {}", shapeOf(ops[0]),
               shapeOf(ops[1]));
  return ops[0];
}

Expected<TensorType> inferReduce(const OpInfo &info, ArrayRef<TensorType> ops,
                                 const AttrDict &attrs, const SymbolRanges &) {
  TRY(requireFloat(ops[0], 0));
  auto ax = axisAttr(info, attrs, ops[0].rank());
  if (!ax)
    return ax.takeError();
  Shape r = ops[0].dims;
  if (attrs.getFlag("keepdim"))
    r[*ax] = DimExpr(1);
  else
    r.erase(r.begin() + *ax);
  return TensorType(r, ops[0].elem);
}

Expected<TensorType> inferSoftmax(const OpInfo &info, ArrayRef<TensorType> ops,
                                  const AttrDict &attrs, const SymbolRanges &) {
  TRY(requireFloat(ops[0], 0));
  auto ax = axisAttr(info, attrs, ops[0].rank());
  if (!ax)
    return ax.takeError();
  return ops[0];
}

Expected<TensorType> inferArgsort(const OpInfo &, ArrayRef<TensorType> ops,
                                  const AttrDict &, const SymbolRanges &) {
  TRY(requireFloat(ops[0], 0));
  if (ops[0].rank() < 1)
    return err("operand must have rank >= 1");
  return TensorType(ops[0].dims, ElemType::I32);
}

Expected<TensorType> inferTopk(const OpInfo &, ArrayRef<TensorType> ops,
                               const AttrDict &attrs, const SymbolRanges &r) {
  TRY(requireFloat(ops[0], 0));
  if (ops[0].rank() < 1)
    return err("operand must have rank >= 1");
  auto *k = attrs.get("k");
  if (!k || !k->isInt())
    return err("requires integer attribute 'k'");
  if (k->getInt() < 1)
    return err("k must be >= 1, got {}", k->getInt());
  if (!provablyLE(DimExpr(k->getInt()), ops[0].dims.back(), r))
    return err("k = {} exceeds the last dim {}", k->getInt(),
               ops[0].dims.back().str());
  Shape s = ops[0].dims;
  s.back() = DimExpr(k->getInt());
  return TensorType(s, ElemType::I32);
}

Expected<TensorType> inferNorm(const OpInfo &info, ArrayRef<TensorType> ops,
                               const AttrDict &, const SymbolRanges &) {
  TRY(requireFloat(ops[0], 0));
  if (ops[0].rank() < 1)
    return err("operand must have rank >= 1");
  for (size_t i = 1; i < ops.size(); ++i) {
    TRY(requireFloat(ops[i], i));
    auto s = broadcastShapes(ops[0].dims, ops[i].dims);
    if (!s || *s != ops[0].dims)
      return err("operand #{} {} does not broadcast to the input {}", i,
                 shapeOf(ops[i]), shapeOf(ops[0]));
  }
  return ops[0];
}

Expected<TensorType> inferGather(const OpInfo &info, ArrayRef<TensorType> ops,
                                 const AttrDict &attrs, const SymbolRanges &) {
  auto &src = ops[0], &idx = ops[1];
  if (src.elem == ElemType::I32)
    return err("source must be a float type");
  TRY(requireI32(idx, "indices (operand #1)"));
  auto ax = axisAttr(info, attrs, src.rank());
  if (!ax)
    return ax.takeError();
  if (idx.rank() < *ax)
    return err("indices {} must start with the {} batch dims of the source {}",
               shapeOf(idx), *ax, shapeOf(src));
  for (int64_t i = 0; i < *ax; ++i)
    if (idx.dims[i] != src.dims[i])
      return err("batch dim {} mismatch: source {} vs indices {}", i,
                 src.dims[i].str(), idx.dims[i].str());
  Shape r(idx.dims.begin(), idx.dims.end());
  r.insert(r.end(), src.dims.begin() + *ax + 1, src.dims.end());
  return TensorType(r, isQuantized(src.elem) ? ElemType::F32 : src.elem);
}

static Expected<Shape> dimsAttr(const AttrDict &attrs, llvm::StringRef name) {
  auto *a = attrs.get(name);
  if (!a)
    return err("requires attribute '{}'", name.str());
  auto d = a->asDims();
  if (!d)
    return err("attribute '{}' must be a list of dims, got {}", name.str(), a->str());
  return *d;
}

static llvm::Error requireNonNegative(const Shape &s, const SymbolRanges &r,
                                      llvm::StringRef what) {
  for (auto &d : s)
    if (!provablyLE(DimExpr(0), d, r))
      return err("{} dim {} may be negative", what.str(), d.str());
  return llvm::Error::success();
}

Expected<TensorType> inferReshape(const OpInfo &, ArrayRef<TensorType> ops,
                                  const AttrDict &attrs, const SymbolRanges &r) {
  auto s = dimsAttr(attrs, "shape");
  if (!s)
    return s.takeError();
  TRY(requireNonNegative(*s, r, "shape"));
  if (numElements(*s) != ops[0].numElements())
    return err("shape {} has {} elements, the input {} has {}",
               Attribute::getDims(*s).str(), numElements(*s).str(),
               shapeOf(ops[0]), ops[0].numElements().str());
  if (isQuantized(ops[0].elem))
    return err("cannot reshape a block-quantised tensor");
  return TensorType(*s, ops[0].elem);
}

Expected<TensorType> inferPermute(const OpInfo &, ArrayRef<TensorType> ops,
                                  const AttrDict &attrs, const SymbolRanges &) {
  auto *a = attrs.get("perm");
  auto perm = a ? a->asInts() : std::nullopt;
  if (!perm)
    return err("requires attribute 'perm' (a list of integers)");
  if ((int64_t)perm->size() != ops[0].rank())
    return err("perm has {} entries, the input has rank {}", perm->size(), ops[0].rank());
  std::vector<bool> seen(perm->size());
  Shape s;
  for (auto p : *perm) {
    if (p < 0 || p >= ops[0].rank() || seen[p])
      return err("perm {} is not a permutation of 0..{}", a->str(), ops[0].rank() - 1);
    seen[p] = true;
    s.push_back(ops[0].dims[p]);
  }
  if (isQuantized(ops[0].elem))
    return err("cannot permute a block-quantised tensor");
  return TensorType(s, ops[0].elem);
}

Expected<TensorType> inferSlice(const OpInfo &info, ArrayRef<TensorType> ops,
                                const AttrDict &attrs, const SymbolRanges &r) {
  auto ax = axisAttr(info, attrs, ops[0].rank());
  if (!ax)
    return ax.takeError();
  auto *st = attrs.get("start"), *sz = attrs.get("size");
  if (!st || !st->isDimLike() || !sz || !sz->isDimLike())
    return err("requires dim attributes 'start' and 'size'");
  DimExpr start = st->getDim(), size = sz->getDim();
  if (!provablyLE(DimExpr(0), start, r) || !provablyLE(DimExpr(0), size, r))
    return err("start and size must be non-negative");
  if (!provablyLE(start + size, ops[0].dims[*ax], r))
    return err("slice [{}, {}+{}) exceeds dim {} of size {}", start.str(), start.str(),
               size.str(), *ax, ops[0].dims[*ax].str());
  if (isQuantized(ops[0].elem))
    return err("cannot slice a block-quantised tensor");
  Shape s = ops[0].dims;
  s[*ax] = size;
  return TensorType(s, ops[0].elem);
}

Expected<TensorType> inferConcat(const OpInfo &info, ArrayRef<TensorType> ops,
                                 const AttrDict &attrs, const SymbolRanges &) {
  auto ax = axisAttr(info, attrs, ops[0].rank());
  if (!ax)
    return ax.takeError();
  Shape s = ops[0].dims;
  for (size_t i = 1; i < ops.size(); ++i) {
    if (ops[i].elem != ops[0].elem || ops[i].rank() != ops[0].rank())
      return err("operand #{} {} does not match operand #0 {}", i, shapeOf(ops[i]),
                 shapeOf(ops[0]));
    for (int64_t d = 0; d < ops[0].rank(); ++d)
      if (d != *ax && ops[i].dims[d] != ops[0].dims[d])
        return err("operand #{} dim {} is {}, operand #0 has {}", i, d,
                   ops[i].dims[d].str(), ops[0].dims[d].str());
    s[*ax] = s[*ax] + ops[i].dims[*ax];
  }
  if (isQuantized(ops[0].elem))
    return err("cannot concat block-quantised tensors");
  return TensorType(s, ops[0].elem);
}

Expected<TensorType> inferBroadcastTo(const OpInfo &, ArrayRef<TensorType> ops,
                                      const AttrDict &attrs, const SymbolRanges &r) {
  auto s = dimsAttr(attrs, "shape");
  if (!s)
    return s.takeError();
  TRY(requireNonNegative(*s, r, "shape"));
  auto b = broadcastShapes(ops[0].dims, *s);
  if (!b || *b != *s)
    return err("cannot broadcast {} to {}", shapeOf(ops[0]), Attribute::getDims(*s).str());
  if (isQuantized(ops[0].elem))
    return err("cannot broadcast a block-quantised tensor");
  return TensorType(*s, ops[0].elem);
}

Expected<TensorType> inferView(const OpInfo &info, ArrayRef<TensorType> ops,
                               const AttrDict &attrs, const SymbolRanges &r) {
  auto s = dimsAttr(attrs, "shape");
  if (!s)
    return s.takeError();
  auto st = dimsAttr(attrs, "strides");
  if (!st)
    return st.takeError();
  if (st->size() != s->size())
    return err("strides has {} entries, shape has {}", st->size(), s->size());
  TRY(requireNonNegative(*s, r, "shape"));
  TRY(requireNonNegative(*st, r, "strides"));
  auto *off = info.attrOrDefault(attrs, "offset");
  DimExpr offset = off && off->isDimLike() ? off->getDim() : DimExpr(0);
  if (!provablyLE(DimExpr(0), offset, r))
    return err("offset {} may be negative", offset.str());
  // Largest element index touched must lie inside the input, for every symbol
  // value in range (a view of an empty shape touches nothing).
  DimExpr last = offset;
  for (size_t i = 0; i < s->size(); ++i)
    last = last + ((*s)[i] - DimExpr(1)) * (*st)[i];
  bool empty = false;
  for (auto &d : *s)
    empty |= d.isConstant(0);
  if (!empty && !provablyLE(last + DimExpr(1), ops[0].numElements(), r))
    return err("view reads up to element {} of an input with {} elements",
               last.str(), ops[0].numElements().str());
  if (isQuantized(ops[0].elem))
    return err("cannot view a block-quantised tensor");
  return TensorType(*s, ops[0].elem);
}

Expected<TensorType> inferAllReduce(const OpInfo &, ArrayRef<TensorType> ops,
                                    const AttrDict &attrs, const SymbolRanges &) {
  TRY(requireFloat(ops[0], 0));
  if (!attrs.getFlag("sum"))
    return err("requires the reduction kind {}", "{sum}");
  return ops[0];
}

Expected<TensorType> inferConstant(const OpInfo &, ArrayRef<TensorType>,
                                   const AttrDict &, const SymbolRanges &) {
  return err("requires a written result type");
}

Expected<TensorType> inferNone(const OpInfo &, ArrayRef<TensorType>,
                               const AttrDict &, const SymbolRanges &) {
  return err("has no result");
}

} // namespace moe::shape_rules

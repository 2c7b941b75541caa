//===- Layout.cpp - Strided layouts of view-like ops ----------------------===//
#include "ir/Layout.h"

using namespace moe;

static bool isOne(const DimExpr &d) { return d.isConstant(1); }

bool moe::isDense(const Layout &l) {
  Shape rm = rowMajorStrides(l.shape);
  for (size_t k = 0; k < l.shape.size(); ++k)
    if (!isOne(l.shape[k]) && l.strides[k] != rm[k])
      return false;
  return true;
}

bool moe::isFullReshape(const Layout &l, const TensorType &in) {
  return l.offset == DimExpr(0) && isDense(l) && numElements(l.shape) == in.numElements();
}

bool moe::isIdentity(const Layout &l, const TensorType &in) {
  return l.shape == in.dims && isFullReshape(l, in);
}

/// `broadcast{shape}` of a value read through (dims, strides): new leading
/// dims and size-1 dims get stride 0.
static Layout broadcastOf(const Shape &dims, const Shape &strides, const Shape &target,
                          DimExpr offset) {
  size_t lead = target.size() - dims.size();
  Layout l{target, Shape(target.size(), DimExpr(0)), std::move(offset)};
  for (size_t k = lead; k < target.size(); ++k)
    if (!isOne(dims[k - lead]))
      l.strides[k] = strides[k - lead];
  return l;
}

/// `permute{perm}` of a value read through (dims, strides).
static Layout permuteOf(const Shape &dims, const Shape &strides,
                        const std::vector<int64_t> &perm, DimExpr offset) {
  Layout l{{}, {}, std::move(offset)};
  for (int64_t p : perm) {
    l.shape.push_back(dims[p]);
    l.strides.push_back(strides[p]);
  }
  return l;
}

std::optional<Layout> moe::layoutOf(const Operation &op) {
  const TensorType &in = op.getOperand(0)->getType();
  Shape rm = rowMajorStrides(in.dims);
  switch (op.getKind()) {
  case OpKind::Reshape: {
    Shape s = *op.getAttr("shape")->asDims();
    return Layout{s, rowMajorStrides(s), DimExpr(0)};
  }
  case OpKind::Permute:
    return permuteOf(in.dims, rm, *op.getAttr("perm")->asInts(), DimExpr(0));
  case OpKind::Slice: {
    int64_t ax = *normalizeAxis(op.getAttr("axis")->getInt(), in.rank());
    Layout l{in.dims, rm, op.getAttr("start")->getDim() * rm[ax]};
    l.shape[ax] = op.getAttr("size")->getDim();
    return l;
  }
  case OpKind::Broadcast:
    return broadcastOf(in.dims, rm, *op.getAttr("shape")->asDims(), DimExpr(0));
  case OpKind::View:
    return Layout{*op.getAttr("shape")->asDims(), *op.getAttr("strides")->asDims(),
                  op.getAttr("offset")->getDim()};
  default:
    return std::nullopt;
  }
}

std::optional<Shape> moe::regroup(const Layout &in, const Shape &shape) {
  std::vector<size_t> a, b; // the dims that are not 1
  for (size_t k = 0; k < in.shape.size(); ++k) {
    if (in.shape[k].isConstant(0))
      return std::nullopt;
    if (!isOne(in.shape[k]))
      a.push_back(k);
  }
  for (size_t k = 0; k < shape.size(); ++k)
    if (!isOne(shape[k]))
      b.push_back(k);
  Shape strides(shape.size(), DimExpr(0));
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (i == a.size() || j == b.size())
      return std::nullopt;
    std::vector<size_t> runIn{a[i++]}, runOut{b[j++]};
    DimExpr pi = in.shape[runIn[0]], po = shape[runOut[0]];
    while (pi != po) {
      if (pi.divExact(po) && j < b.size()) {
        runOut.push_back(b[j++]);
        po = po * shape[runOut.back()];
      } else if (po.divExact(pi) && i < a.size()) {
        runIn.push_back(a[i++]);
        pi = pi * in.shape[runIn.back()];
      } else {
        return std::nullopt;
      }
    }
    for (size_t k = 0; k + 1 < runIn.size(); ++k)
      if (in.strides[runIn[k]] != in.shape[runIn[k + 1]] * in.strides[runIn[k + 1]])
        return std::nullopt;
    DimExpr s = in.strides[runIn.back()];
    for (size_t k = runOut.size(); k-- > 0;) {
      strides[runOut[k]] = s;
      s = s * shape[runOut[k]];
    }
  }
  // A size-1 dim's stride is free; give it the row-major one, for reading.
  for (size_t k = shape.size(); k-- > 0;)
    if (isOne(shape[k]))
      strides[k] = k + 1 < shape.size() ? strides[k + 1] * shape[k + 1] : DimExpr(1);
  return strides;
}

std::optional<Layout> moe::compose(const Layout &in, const Operation &outer) {
  switch (outer.getKind()) {
  case OpKind::Permute:
    return permuteOf(in.shape, in.strides, *outer.getAttr("perm")->asInts(), in.offset);
  case OpKind::Slice: {
    int64_t ax = *normalizeAxis(outer.getAttr("axis")->getInt(), (int64_t)in.shape.size());
    Layout l = in;
    l.shape[ax] = outer.getAttr("size")->getDim();
    l.offset = in.offset + outer.getAttr("start")->getDim() * in.strides[ax];
    return l;
  }
  case OpKind::Broadcast:
    return broadcastOf(in.shape, in.strides, *outer.getAttr("shape")->asDims(), in.offset);
  default: {
    Layout out = *layoutOf(outer);
    if (isDense(in)) // the inner view's elements are consecutive in x
      return Layout{out.shape, out.strides, out.offset + in.offset};
    if (isFullReshape(out, outer.getOperand(0)->getType()))
      if (auto st = regroup(in, out.shape))
        return Layout{out.shape, *st, in.offset};
    return std::nullopt;
  }
  }
}

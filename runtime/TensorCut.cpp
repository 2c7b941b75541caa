//===- TensorCut.cpp - Cutting and joining tensors along an axis ----------===//
#include "runtime/TensorCut.h"
#include "ir/Error.h"

#include "fmt/format.h"
#include <cstring>

using namespace moe;

namespace {
/// Bytes per element-run along a row, and the element unit a cut must respect.
struct Layout {
  int64_t outer, axisLen, inner; ///< elements (inner in elements, may be blocks)
};
Layout layoutOf(const Tensor &t, int64_t axis) {
  Layout l{1, t.shape[axis], 1};
  for (int64_t k = 0; k < axis; ++k)
    l.outer *= t.shape[k];
  for (int64_t k = axis + 1; k < t.rank(); ++k)
    l.inner *= t.shape[k];
  return l;
}

/// Copies runs of `count` units (elements, or bytes of blocks) between
/// storages of the kind the tensor uses.
void copyUnits(const Tensor &src, int64_t srcOff, Tensor &dst, int64_t dstOff, int64_t n) {
  if (n == 0) // an empty shard: its storage may be a null pointer
    return;
  if (isQuantized(src.elem))
    std::memcpy(dst.raw.data() + dstOff, src.raw.data() + srcOff, n);
  else if (src.elem == ElemType::I32)
    std::memcpy(dst.i.data() + dstOff, src.i.data() + srcOff, n * sizeof(int32_t));
  else
    std::memcpy(dst.f.data() + dstOff, src.f.data() + srcOff, n * sizeof(float));
}

/// Units per element along the innermost axis: bytes per block / 32 for the
/// block types (only whole blocks are ever moved), 1 otherwise.
llvm::Error checkCut(const Tensor &t, int64_t axis, int64_t at) {
  if (isQuantized(t.elem) && axis == t.rank() - 1 && at % blockElems(t.elem))
    return err(fmt::format("cannot cut a {} tensor {} inside a block (at {} of the innermost "
                           "axis)", elemTypeName(t.elem).str(), t.shapeStr(), at));
  return llvm::Error::success();
}

/// For the block types, element counts along the innermost axis become bytes.
int64_t units(const Tensor &t, int64_t axis, int64_t inner, int64_t len) {
  if (!isQuantized(t.elem))
    return len * inner;
  if (axis == t.rank() - 1)
    return len / blockElems(t.elem) * blockBytes(t.elem);
  return len * inner / blockElems(t.elem) * blockBytes(t.elem);
}
} // namespace

llvm::Expected<Tensor> moe::sliceAxis(const Tensor &t, int64_t axis, int64_t begin,
                                      int64_t end) {
  if (axis < 0 || axis >= t.rank() || begin < 0 || end < begin || end > t.shape[axis])
    return err(fmt::format("slice [{}, {}) of axis {} is outside {}", begin, end, axis,
                           t.shapeStr()));
  if (auto e = checkCut(t, axis, begin))
    return e;
  if (auto e = checkCut(t, axis, end))
    return e;
  std::vector<int64_t> shape = t.shape;
  shape[axis] = end - begin;
  Tensor r = Tensor::zeros(t.elem, shape);
  Layout l = layoutOf(t, axis);
  int64_t srcRow = units(t, axis, l.inner, l.axisLen);
  int64_t dstRow = units(t, axis, l.inner, end - begin);
  int64_t off = units(t, axis, l.inner, begin);
  for (int64_t o = 0; o < l.outer; ++o)
    copyUnits(t, o * srcRow + off, r, o * dstRow, dstRow);
  return r;
}

llvm::Expected<Tensor> moe::concatAxis(llvm::ArrayRef<const Tensor *> ts, int64_t axis) {
  if (ts.empty())
    return err("nothing to concatenate");
  const Tensor &first = *ts[0];
  std::vector<int64_t> shape = first.shape;
  shape[axis] = 0;
  for (auto *t : ts) {
    if (t->elem != first.elem || t->rank() != first.rank())
      return err("cannot concatenate tensors of different types or ranks");
    for (int64_t k = 0; k < first.rank(); ++k)
      if (k != axis && t->shape[k] != first.shape[k])
        return err(fmt::format("cannot concatenate {} and {} along axis {}", first.shapeStr(),
                               t->shapeStr(), axis));
    if (auto e = checkCut(*t, axis, t->shape[axis]))
      return e;
    shape[axis] += t->shape[axis];
  }
  Tensor r = Tensor::zeros(first.elem, shape);
  Layout l = layoutOf(r, axis);
  int64_t dstRow = units(r, axis, l.inner, l.axisLen), at = 0;
  for (auto *t : ts) {
    int64_t srcRow = units(*t, axis, l.inner, t->shape[axis]);
    for (int64_t o = 0; o < l.outer; ++o)
      copyUnits(*t, o * srcRow, r, o * dstRow + at, srcRow);
    at += srcRow;
  }
  return r;
}

llvm::Expected<int64_t> moe::cutStored(ElemType elem, llvm::ArrayRef<int64_t> shape,
                                  const uint8_t *data, int64_t axis,
                                  llvm::ArrayRef<std::pair<int64_t, int64_t>> ranges,
                                  uint8_t *dst) {
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < axis; ++k)
    outer *= shape[k];
  for (int64_t k = axis + 1; k < (int64_t)shape.size(); ++k)
    inner *= shape[k];
  for (auto [b, e] : ranges)
    for (int64_t at : {b, e})
      if (isQuantized(elem) && (at * inner) % blockElems(elem))
        return err(fmt::format("cannot cut a {} tensor {} inside a block (at {} of axis {})",
                               elemTypeName(elem).str(), formatShape(shape), at, axis));
  int64_t outerBytes = rowBytes(elem, shape[axis] * inner), total = 0;
  for (auto [b, e] : ranges)
    total += rowBytes(elem, (e - b) * inner);
  if (dst)
    for (int64_t o = 0; o < outer; ++o)
      for (auto [b, e] : ranges) {
        int64_t n = rowBytes(elem, (e - b) * inner);
        if (n)
          std::memcpy(dst, data + o * outerBytes + rowBytes(elem, b * inner), n);
        dst += n;
      }
  return outer * total;
}

llvm::Expected<int64_t> moe::joinStored(ElemType elem, llvm::ArrayRef<StoredPart> parts,
                                        int64_t axis, uint8_t *dst) {
  if (parts.empty())
    return err("nothing to join");
  int64_t outer = 1, inner = 1, total = 0;
  llvm::ArrayRef<int64_t> s0 = parts[0].shape;
  for (int64_t k = 0; k < axis; ++k)
    outer *= s0[k];
  for (int64_t k = axis + 1; k < (int64_t)s0.size(); ++k)
    inner *= s0[k];
  for (auto &p : parts) {
    if (isQuantized(elem) && (p.shape[axis] * inner) % blockElems(elem))
      return err(fmt::format("cannot join {} tensors inside a block", elemTypeName(elem).str()));
    total += rowBytes(elem, p.shape[axis] * inner);
  }
  if (dst)
    for (int64_t o = 0; o < outer; ++o)
      for (auto &p : parts) {
        int64_t n = rowBytes(elem, p.shape[axis] * inner);
        std::memcpy(dst, p.data + o * n, n);
        dst += n;
      }
  return outer * total;
}

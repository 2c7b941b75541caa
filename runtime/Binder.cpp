//===- Binder.cpp - Binding arguments: sources, derivations, shards -------===//
#include "runtime/Binder.h"
#include "ir/Error.h"
#include "ir/ParamDerive.h"
#include "ir/Spmd.h"
#include "runtime/Interpreter.h"
#include "runtime/Random.h"

#include "fmt/format.h"
#include <cstring>
#include <functional>
#include <numeric>

using namespace moe;

ArgSource moe::randomSource(uint64_t seed) {
  return [seed](const Value &arg, ElemType elem, llvm::ArrayRef<int64_t> shape) {
    return randomTensor(seed, arg.getName(), elem, shape, arg.isParam());
  };
}

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
  int64_t srcRow = units(t, axis, l.inner, l.axisLen), dstRow = units(t, axis, l.inner, end - begin);
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

const void *moe::storedData(const Tensor &t, std::vector<std::vector<uint8_t>> &storage) {
  switch (t.elem) {
  case ElemType::F32: return t.f.data();
  case ElemType::I32: return t.i.data();
  case ElemType::F16:
  case ElemType::BF16: return storage.emplace_back(t.storedBytes()).data();
  default: return t.raw.data();
  }
}

namespace {
/// Bytes of `n` consecutive elements of `elem` starting at a block boundary.
int64_t storedBytesOf(ElemType elem, int64_t n) {
  if (isQuantized(elem))
    return n / blockElems(elem) * blockBytes(elem);
  return n * (elem == ElemType::F16 || elem == ElemType::BF16 ? 2 : 4); // f32, i32: 4
}

/// Rows `ranges` of `axis` of the stored tensor at `data` (type `elem`,
/// shape `shape`), joined along `axis`, in stored layout, written to `dst`
/// unless it is null; returns the bytes that takes. Cuts must respect
/// blocks (the shard rules ensure it; checked again here).
llvm::Expected<int64_t> cutStored(ElemType elem, llvm::ArrayRef<int64_t> shape,
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
  int64_t rowBytes = storedBytesOf(elem, shape[axis] * inner), total = 0;
  for (auto [b, e] : ranges)
    total += storedBytesOf(elem, (e - b) * inner);
  if (dst)
    for (int64_t o = 0; o < outer; ++o)
      for (auto [b, e] : ranges) {
        int64_t n = storedBytesOf(elem, (e - b) * inner);
        if (n)
          std::memcpy(dst, data + o * rowBytes + storedBytesOf(elem, b * inner), n);
        dst += n;
      }
  return outer * total;
}
} // namespace

Binder::Binder(const Function &f, ArgSource source, SymbolBindings syms, InPlaceSource inPlace)
    : f(f), source(std::move(source)), syms(std::move(syms)), inPlace(std::move(inPlace)) {}

llvm::Expected<const void *> Binder::inPlaceData(const Value &arg) {
  if (!inPlace || !arg.isParam())
    return nullptr;
  auto d = getDerivation(arg);
  if (!d)
    return d.takeError();
  if (*d)
    return nullptr;
  TensorType t = fullParamType(f, arg);
  auto shape = evaluateShape(t, syms);
  if (!shape)
    return err(fmt::format("argument %{}: {}", arg.getName(), llvm::toString(shape.takeError())));
  return inPlace(arg, t.elem, *shape);
}

SymbolBindings Binder::symbolsForRank(int64_t rank) const {
  SymbolBindings b = syms;
  for (auto &e : rankBindings(f, rank))
    b[e.getKey()] = e.getValue();
  return b;
}

llvm::Expected<const Tensor *> Binder::whole(llvm::StringRef name) {
  if (auto it = cache.find(name); it != cache.end())
    return &it->second;
  const Value *arg = f.lookupArgument(name);
  if (!arg)
    return err(fmt::format("@{} has no argument %{}", f.getName(), name.str()));
  if (std::find(inProgress.begin(), inProgress.end(), name.str()) != inProgress.end())
    return err(fmt::format("param %{}: derivation cycle", name.str()));
  TensorType t = fullParamType(f, *arg);
  auto d = getDerivation(*arg);
  if (!d)
    return d.takeError();
  Tensor value;
  if (!*d) {
    auto shape = evaluateShape(t, syms);
    if (!shape)
      return err(fmt::format("argument %{}: {}", name.str(), llvm::toString(shape.takeError())));
    auto v = source(*arg, t.elem, *shape);
    if (!v)
      return v.takeError();
    value = std::move(*v);
  } else {
    inProgress.push_back(name.str());
    std::vector<const Tensor *> srcs;
    for (auto &s : (*d)->from) {
      auto w = whole(s);
      if (!w)
        return w.takeError();
      srcs.push_back(*w);
    }
    inProgress.pop_back();
    auto v = (*d)->kind == ParamDerivation::Kind::Concat
                 ? concatAxis(srcs, (*d)->axis)
                 : sliceAxis(*srcs[0], (*d)->axis, (*d)->start, (*d)->start + (*d)->size);
    if (!v)
      return err(fmt::format("deriving param %{}: {}", name.str(),
                             llvm::toString(v.takeError())));
    value = std::move(*v);
  }
  return &(cache[name] = std::move(value));
}

llvm::Expected<const void *> Binder::derivedInPlace(const Value &arg) {
  if (auto it = derivedCache.find(arg.getName()); it != derivedCache.end())
    return it->second.data();
  auto d = getDerivation(arg);
  if (!d)
    return d.takeError();
  if (!*d || !inPlace)
    return nullptr;
  ElemType elem = arg.getType().elem;
  std::vector<std::pair<const uint8_t *, std::vector<int64_t>>> srcs;
  for (auto &name : (*d)->from) {
    const Value *s = f.lookupArgument(name);
    if (!s)
      return err(fmt::format("param %{}: derived from %{}, which @{} does not have",
                             arg.getName(), name, f.getName()));
    auto mem = inPlaceData(*s);
    if (!mem)
      return mem.takeError();
    auto shape = evaluateShape(fullParamType(f, *s), syms);
    if (!shape)
      return shape.takeError();
    if (!*mem || s->getType().elem != elem)
      return nullptr; // not in place: Binder::whole computes it
    srcs.push_back({static_cast<const uint8_t *>(*mem), std::move(*shape)});
  }
  const ParamDerivation &pd = **d;
  HostBuffer buf;
  if (pd.kind == ParamDerivation::Kind::Slice) {
    auto &[data, shape] = srcs.at(0);
    std::pair<int64_t, int64_t> range{pd.start, pd.start + pd.size};
    auto n = cutStored(elem, shape, data, pd.axis, range, nullptr);
    if (!n)
      return err(fmt::format("deriving param %{}: {}", arg.getName(),
                             llvm::toString(n.takeError())));
    buf = HostBuffer::allocate(*n);
    if (buf.data())
      cantFail(cutStored(elem, shape, data, pd.axis, range, buf.data()));
  } else { // concat: each source's rows of `axis`, source after source
    int64_t outer = 1, inner = 1, total = 0;
    const std::vector<int64_t> &s0 = srcs.at(0).second;
    for (int64_t k = 0; k < pd.axis; ++k)
      outer *= s0[k];
    for (int64_t k = pd.axis + 1; k < (int64_t)s0.size(); ++k)
      inner *= s0[k];
    for (auto &[data, shape] : srcs) {
      if (isQuantized(elem) && (shape[pd.axis] * inner) % blockElems(elem))
        return err(fmt::format("deriving param %{}: cannot join {} tensors inside a block",
                               arg.getName(), elemTypeName(elem).str()));
      total += storedBytesOf(elem, shape[pd.axis] * inner);
    }
    buf = HostBuffer::allocate(outer * total);
    if (uint8_t *dst = buf.data())
      for (int64_t o = 0; o < outer; ++o)
        for (auto &[data, shape] : srcs) {
          int64_t n = storedBytesOf(elem, shape[pd.axis] * inner);
          std::memcpy(dst, data + o * n, n);
          dst += n;
        }
  }
  if (!buf.data())
    return err(fmt::format("deriving param %{}: cannot allocate its memory", arg.getName()));
  return (derivedCache[arg.getName()] = std::move(buf)).data();
}

llvm::Expected<Tensor> Binder::rankTensor(const Value &arg, int64_t rank) {
  auto spec = getShardSpec(arg);
  auto ranges = spec ? shardRanges(f, arg, rank, syms)
                     : std::vector<std::pair<int64_t, int64_t>>{};
  // A shard of a param held in place is cut from that memory directly.
  auto mem = spec ? inPlaceData(arg) : llvm::Expected<const void *>(nullptr);
  if (!mem)
    return mem.takeError();
  if (*mem) {
    TensorType t = fullParamType(f, arg);
    auto shape = evaluateShape(t, syms);
    if (!shape)
      return shape.takeError();
    const auto *data = static_cast<const uint8_t *>(*mem);
    auto n = cutStored(t.elem, *shape, data, spec->axis, ranges, nullptr);
    if (!n)
      return err(fmt::format("sharding param %{} for rank {}: {}", arg.getName(), rank,
                             llvm::toString(n.takeError())));
    std::vector<uint8_t> bytes(*n);
    cantFail(cutStored(t.elem, *shape, data, spec->axis, ranges, bytes.data()));
    std::vector<int64_t> s = *shape;
    s[spec->axis] = 0;
    for (auto [b, e] : ranges)
      s[spec->axis] += e - b;
    return Tensor::fromStored(t.elem, std::move(s), bytes.data());
  }
  auto w = whole(arg.getName());
  if (!w)
    return w.takeError();
  if (!spec)
    return **w;
  std::vector<Tensor> parts;
  for (auto [b, e] : ranges) {
    auto p = sliceAxis(**w, spec->axis, b, e);
    if (!p)
      return err(fmt::format("sharding param %{} for rank {}: {}", arg.getName(), rank,
                             llvm::toString(p.takeError())));
    parts.push_back(std::move(*p));
  }
  std::vector<const Tensor *> ptrs;
  for (auto &p : parts)
    ptrs.push_back(&p);
  return concatAxis(ptrs, spec->axis);
}

llvm::Expected<std::vector<Tensor>> Binder::argsForRank(int64_t rank) {
  std::vector<Tensor> out;
  for (auto *arg : f.getArguments()) {
    auto t = rankTensor(*arg, rank);
    if (!t)
      return t.takeError();
    out.push_back(std::move(*t));
  }
  return out;
}

llvm::Expected<StoredArgs> Binder::storedArgsForRank(int64_t rank) {
  SymbolBindings rs = symbolsForRank(rank);
  StoredArgs out;
  for (auto *arg : f.getArguments()) {
    auto spec = getShardSpec(*arg);
    // The whole value in stored layout: in place, else the Binder's cached
    // whole value (computed once, shared by the ranks, not copied per rank).
    auto mem = inPlaceData(*arg);
    if (!mem)
      return mem.takeError();
    const uint8_t *data = static_cast<const uint8_t *>(*mem);
    bool inPlaceArg = data != nullptr;
    if (!data) { // a derived param built from in-place sources
      auto dm = derivedInPlace(*arg);
      if (!dm)
        return dm.takeError();
      data = static_cast<const uint8_t *>(*dm);
    }
    TensorType type = arg->isParam() ? fullParamType(f, *arg) : arg->getType();
    auto shape = evaluateShape(type, syms);
    if (!shape)
      return err(fmt::format("argument %{}: {}", arg->getName(),
                             llvm::toString(shape.takeError())));
    int64_t wholeBytes = storedBytesOf(
        type.elem, std::accumulate(shape->begin(), shape->end(), int64_t(1), std::multiplies<>()));
    if (!data) { // from the source, through the cache
      auto w = whole(arg->getName());
      if (!w)
        return w.takeError();
      if (!spec) {
        if (auto e = checkArgument(f, arg->getArgIndex(), **w, rs))
          return e;
      } else if ((**w).shape != *shape || (**w).elem != type.elem) {
        return err(fmt::format("param %{}: the whole value is {} {}, {} {} expected",
                               arg->getName(), elemTypeName((**w).elem).str(),
                               (**w).shapeStr(), elemTypeName(type.elem).str(),
                               formatShape(*shape)));
      }
      data = static_cast<const uint8_t *>(storedData(**w, out.storage));
    }
    if (!spec) {
      out.ptrs.push_back(data);
      if (inPlaceArg)
        ++out.stats.numInPlace;
      else
        out.stats.copiedBytes += wholeBytes;
      continue;
    }
    // A shard: only this rank's rows, cut from the whole value.
    auto ranges = shardRanges(f, *arg, rank, syms);
    auto n = cutStored(type.elem, *shape, data, spec->axis, ranges, nullptr);
    if (!n)
      return err(fmt::format("sharding param %{} for rank {}: {}", arg->getName(), rank,
                             llvm::toString(n.takeError())));
    uint8_t *buf = out.allocate(*n);
    if (!buf)
      return err(fmt::format("sharding param %{} for rank {}: cannot allocate {} bytes",
                             arg->getName(), rank, *n));
    cantFail(cutStored(type.elem, *shape, data, spec->axis, ranges, buf));
    out.ptrs.push_back(buf);
    out.stats.copiedBytes += *n;
  }
  return out;
}

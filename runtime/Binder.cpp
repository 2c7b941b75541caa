//===- Binder.cpp - Binding arguments: sources, derivations, shards -------===//
//
// The cuts and joins themselves (of Tensors and of stored bytes) are in
// runtime/TensorCut.cpp.
//
//===----------------------------------------------------------------------===//
#include "runtime/Binder.h"
#include "ir/Error.h"
#include "ir/ParamDerive.h"
#include "ir/Spmd.h"
#include "runtime/Interpreter.h"
#include "runtime/Random.h"
#include "runtime/TensorCut.h"

#include "fmt/format.h"
#include <cstring>
#include <functional>
#include <numeric>

using namespace moe;

ArgSource moe::randomSource(uint64_t seed) {
  return [seed](const Value &arg, ElemType elem, llvm::ArrayRef<int64_t> shape) {
    return randomTensor(seed, arg.getName(), elem, shape, arg.isParam(), idBound(arg));
  };
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

Binder::Binder(const Function &f, ArgSource source, SymbolBindings syms, InPlaceSource inPlace,
               ReleaseFn release)
    : f(f), source(std::move(source)), syms(std::move(syms)), inPlace(std::move(inPlace)),
      release(std::move(release)) {}

/// Experts (the leading dim of a 3-D weight; else 1) of a stored value of
/// `shape`, and the bytes of one.
static std::pair<int64_t, int64_t> expertSlices(ElemType elem, llvm::ArrayRef<int64_t> shape) {
  int64_t n = std::accumulate(shape.begin(), shape.end(), int64_t(1), std::multiplies<>());
  int64_t experts = shape.size() == 3 ? shape[0] : 1;
  return {experts, experts ? rowBytes(elem, n) / experts : 0};
}

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

llvm::Expected<std::vector<std::pair<const uint8_t *, std::vector<int64_t>>>>
Binder::inPlaceSources(const Value &arg, const ParamDerivation &pd) {
  std::vector<std::pair<const uint8_t *, std::vector<int64_t>>> srcs;
  for (auto &name : pd.from) {
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
    if (!*mem || s->getType().elem != arg.getType().elem)
      return std::vector<std::pair<const uint8_t *, std::vector<int64_t>>>();
    srcs.push_back({static_cast<const uint8_t *>(*mem), std::move(*shape)});
  }
  return srcs;
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
  auto in = inPlaceSources(arg, **d);
  if (!in)
    return in.takeError();
  if (in->empty())
    return nullptr; // not in place: Binder::whole computes it
  std::vector<std::pair<const uint8_t *, std::vector<int64_t>>> srcs = std::move(*in);
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
    std::vector<StoredPart> parts;
    for (auto &[data, shape] : srcs)
      parts.push_back({data, shape});
    auto n = joinStored(elem, parts, pd.axis, nullptr);
    if (!n)
      return err(fmt::format("deriving param %{}: {}", arg.getName(),
                             llvm::toString(n.takeError())));
    buf = HostBuffer::allocate(*n);
    if (buf.data())
      cantFail(joinStored(elem, parts, pd.axis, buf.data()));
  }
  if (!buf.data())
    return err(fmt::format("deriving param %{}: cannot allocate its memory", arg.getName()));
  return (derivedCache[arg.getName()] = std::move(buf)).data();
}

llvm::Expected<ArgFeed> Binder::derivedFeed(const Value &arg) {
  auto d = getDerivation(arg);
  if (!d)
    return d.takeError();
  ElemType elem = arg.getType().elem;
  if (!*d || !inPlace || (*d)->kind != ParamDerivation::Kind::Concat || (*d)->axis < 1 ||
      arg.getType().dims.size() != 3)
    return ArgFeed();
  struct Src {
    const uint8_t *data;
    std::vector<int64_t> shape;
    int64_t expertBytes;
  };
  auto in = inPlaceSources(arg, **d);
  if (!in)
    return in.takeError();
  if (in->empty())
    return ArgFeed(); // not in place: built whole
  std::vector<Src> srcs;
  for (auto &[data, shape] : *in) {
    if (shape.size() != 3)
      return ArgFeed();
    int64_t eb = expertSlices(elem, shape).second;
    srcs.push_back({data, std::move(shape), eb});
  }
  // The experts' slices of the sources, joined: what the whole value's
  // experts [e0, e1) are, written without building the whole.
  int64_t axis = (*d)->axis;
  std::string name = arg.getName();
  ArgFeed feed;
  feed.fill = [srcs, axis, elem, name](int64_t e0, int64_t e1, uint8_t *dst) -> llvm::Error {
    std::vector<std::vector<int64_t>> shapes;
    std::vector<StoredPart> parts;
    for (auto &s : srcs) {
      shapes.push_back(s.shape);
      shapes.back()[0] = e1 - e0;
    }
    for (size_t i = 0; i < srcs.size(); ++i)
      parts.push_back({srcs[i].data + e0 * srcs[i].expertBytes, shapes[i]});
    if (auto n = joinStored(elem, parts, axis, dst); !n)
      return err(fmt::format("deriving param %{}: {}", name, llvm::toString(n.takeError())));
    return llvm::Error::success();
  };
  if (release)
    feed.release = [srcs, rel = release](int64_t e0, int64_t e1) {
      for (auto &s : srcs)
        rel(s.data + e0 * s.expertBytes, size_t((e1 - e0) * s.expertBytes));
    };
  return feed;
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
  for (auto *arg : f.getArguments())
    if (auto e = appendStoredArg(*arg, rank, rs, out))
      return e;
  return out;
}

llvm::Expected<StoredArgs> Binder::storedArgsForRank(int64_t rank,
                                                     const std::vector<bool> &packedOnly) {
  SymbolBindings rs = symbolsForRank(rank);
  StoredArgs out;
  out.feeds.resize(f.getNumArguments());
  for (auto *arg : f.getArguments()) {
    unsigned k = arg->getArgIndex();
    if (auto e = appendStoredArg(*arg, rank, rs, out, k < packedOnly.size() && packedOnly[k]))
      return e;
  }
  return out;
}

llvm::Expected<StoredArgs> Binder::storedArgForRank(const Value &arg, int64_t rank) {
  StoredArgs out;
  if (auto e = appendStoredArg(arg, rank, symbolsForRank(rank), out))
    return e;
  return out;
}

llvm::Error Binder::appendStoredArg(const Value &argRef, int64_t rank, const SymbolBindings &rs,
                                    StoredArgs &out, bool packedOnly) {
  const Value *arg = &argRef;
  {
    auto spec = getShardSpec(*arg);
    // The whole value in stored layout: in place, else the Binder's cached
    // whole value (computed once, shared by the ranks, not copied per rank).
    auto mem = inPlaceData(*arg);
    if (!mem)
      return mem.takeError();
    const uint8_t *data = static_cast<const uint8_t *>(*mem);
    bool inPlaceArg = data != nullptr;
    if (!data && packedOnly && !spec) { // joined expert by expert as it is packed
      auto feed = derivedFeed(*arg);
      if (!feed)
        return feed.takeError();
      if (feed->fill) {
        out.ptrs.push_back(nullptr);
        out.feeds[arg->getArgIndex()] = std::move(*feed);
        return llvm::Error::success();
      }
    }
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
    int64_t wholeBytes = rowBytes(
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
      if (packedOnly && inPlaceArg && release) {
        int64_t eb = expertSlices(type.elem, *shape).second;
        out.feeds[arg->getArgIndex()].release = [data, eb, rel = release](int64_t e0, int64_t e1) {
          rel(data + e0 * eb, size_t((e1 - e0) * eb));
        };
      }
      return llvm::Error::success();
    }
    // A shard: only this rank's rows, cut from the whole value. One that
    // only a packed copy is read from is freed once packed.
    auto ranges = shardRanges(f, *arg, rank, syms);
    auto n = cutStored(type.elem, *shape, data, spec->axis, ranges, nullptr);
    if (!n)
      return err(fmt::format("sharding param %{} for rank {}: {}", arg->getName(), rank,
                             llvm::toString(n.takeError())));
    uint8_t *buf;
    if (packedOnly) {
      auto shard = std::make_shared<HostBuffer>(HostBuffer::allocate(*n));
      buf = shard->data();
      std::vector<int64_t> mine = *shape;
      mine[spec->axis] = 0;
      for (auto [b, e] : ranges)
        mine[spec->axis] += e - b;
      int64_t experts = expertSlices(type.elem, mine).first;
      out.feeds[arg->getArgIndex()].release = [shard, experts](int64_t, int64_t e1) {
        if (e1 >= experts)
          *shard = HostBuffer();
      };
    } else {
      buf = out.allocate(*n);
    }
    if (!buf)
      return err(fmt::format("sharding param %{} for rank {}: cannot allocate {} bytes",
                             arg->getName(), rank, *n));
    cantFail(cutStored(type.elem, *shape, data, spec->axis, ranges, buf));
    out.ptrs.push_back(buf);
    out.stats.copiedBytes += *n;
  }
  return llvm::Error::success();
}

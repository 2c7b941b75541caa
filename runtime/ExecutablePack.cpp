//===- ExecutablePack.cpp - Weights repacked at bind time ----------------===//
//
// Executable::packWeights runs the prepare steps (codegen's Packed buffers)
// ahead of the runs, so that the first run costs what the others do and the
// memory the weights came from can go as soon as their packed copies exist:
//
//   - each weight is packed a few experts at a time (about kChunkBytes of
//     its stored bytes), the prepare kernel's items of those experts split
//     over the pool (a prepare step's items are expert-major, Program.h);
//   - a weight nobody else reads (packedOnly) is then released chunk by
//     chunk through its feed: the pages of a mapped GGUF file dropped
//     (madvise), a tensor-parallel shard freed after its last expert;
//   - a derived param (the merged gate_up) with a feed is never built
//     whole: the feed joins its sources' slices of the chunk's experts
//     into a staging buffer of one chunk, which the kernel reads as if it
//     were the whole value (its base pointer moved back by e0 experts).
//
// So the resident memory after binding is the packed copies plus a chunk,
// not the mapping, the merged copy and the packed copies together.
//
//===----------------------------------------------------------------------===//
#include "runtime/Executable.h"
#include "ir/Error.h"
#include "runtime/Formats.h"
#include "runtime/Interpreter.h"

#include <algorithm>

using namespace moe;
using namespace moe::codegen;

/// Stored bytes of one weight packed between two releases (the default).
static constexpr int64_t kChunkBytes = int64_t(16) << 20;

std::vector<bool> Executable::packedOnly(const SymbolBindings &syms) const {
  if (const Executable *v = variantFor(syms))
    return v->packedOnly(syms);
  size_t n = fn->getNumArguments();
  std::vector<bool> packedArg(n, false), rawRead(n, false);
  for (const BufferDesc &d : prog.buffers)
    if (d.kind == BufferKind::Packed)
      packedArg[d.argIndex] = true;
  auto raw = [&](unsigned b) {
    if (prog.buffers[b].kind == BufferKind::Argument)
      rawRead[prog.buffers[b].argIndex] = true;
  };
  for (const Step &st : prog.steps)
    if (!st.prepare)
      for (unsigned b : st.reads)
        raw(b);
  for (unsigned b : prog.results)
    raw(b);
  std::vector<bool> only(n);
  for (size_t k = 0; k < n; ++k)
    only[k] = packedArg[k] && !rawRead[k];
  return only;
}

llvm::Error Executable::packWeights(StoredArgs &args, const SymbolBindings &syms,
                                    uint64_t paramsVersion, WorkerPool *wp,
                                    int64_t chunkBytes) {
  if (auto e = checkSymbols(*fn, syms))
    return e;
  if (!wp)
    wp = pool.get();
  if (Executable *v = variantFor(syms))
    return v->packWeights(args, syms, paramsVersion, wp, chunkBytes);
  if (!paramsVersion)
    return err("packWeights: a params version is needed (Executable::newParamsVersion)");
  if (args.ptrs.size() != fn->getNumArguments())
    return err("@{} takes {} arguments, got {}", fn->getName(), fn->getNumArguments(),
               args.ptrs.size());
  std::vector<bool> only = packedOnly(syms);
  std::vector<int64_t> symv;
  for (auto &s : prog.symbols)
    symv.push_back(syms.lookup(s));
  std::vector<void *> bufs(prog.buffers.size(), nullptr);
  for (size_t b = 0; b < bufs.size(); ++b)
    if (prog.buffers[b].kind == BufferKind::Argument)
      bufs[b] = const_cast<void *>(args.ptrs[prog.buffers[b].argIndex]);

  for (unsigned k = 0; k < fn->getNumArguments(); ++k) {
    // The prepare steps packing argument k (one per Packed buffer of it).
    std::vector<size_t> steps;
    for (size_t s = 0; s < prog.steps.size(); ++s)
      if (prog.steps[s].prepare && prog.buffers[prog.steps[s].buffer].argIndex == k)
        steps.push_back(s);
    if (steps.empty())
      continue;
    const Value *arg = fn->getArgument(k);
    ArgFeed *feed = k < args.feeds.size() ? &args.feeds[k] : nullptr;
    bool fed = feed && feed->fill;
    auto shape = evaluateShape(arg->getType(), syms);
    if (!shape)
      return err("argument %{}: {}", arg->getName(), llvm::toString(shape.takeError()));
    int64_t elems = 1;
    for (int64_t d : *shape)
      elems *= d;
    int64_t bytes = rowBytes(arg->getType().elem, elems);
    if (!args.ptrs[k] && !fed && bytes > 0)
      return err("@{}: argument %{} is not bound", fn->getName(), arg->getName());
    // Experts of the argument and of each step's items; chunks of experts
    // when they agree (else the whole weight at once).
    int64_t experts = shape->size() == 3 ? (*shape)[0] : 1;
    int64_t expertBytes = experts ? bytes / experts : 0;
    std::vector<int64_t> items(steps.size());
    bool chunked = true;
    for (size_t i = 0; i < steps.size(); ++i) {
      const Step &st = prog.steps[steps[i]];
      items[i] = 1;
      for (auto &[d, div] : st.extent) {
        auto v = evaluateDim(d, syms);
        if (!v)
          return v.takeError();
        items[i] *= (*v + div - 1) / div;
      }
      auto e = evaluateDim(st.extent.at(0).first, syms);
      if (!e)
        return e.takeError();
      chunked &= st.extent[0].second == 1 && *e == experts;
    }
    int64_t perChunk = chunked ? std::clamp<int64_t>((chunkBytes > 0 ? chunkBytes : kChunkBytes) /
                                                         std::max<int64_t>(expertBytes, 1),
                                                     1, std::max<int64_t>(experts, 1))
                               : std::max<int64_t>(experts, 1);
    HostBuffer staging;
    if (fed) {
      staging = HostBuffer::allocate(std::max<int64_t>(perChunk * expertBytes, 1));
      if (!staging.data())
        return err("cannot allocate the {} bytes packing %{} takes", perChunk * expertBytes,
                   arg->getName());
    }
    // The packed copies, then the chunks.
    std::vector<std::shared_ptr<HostBuffer>> data;
    for (size_t s : steps) {
      const BufferDesc &d = prog.buffers[prog.steps[s].buffer];
      auto n = evaluateDim(d.scratchBytes, syms);
      if (!n)
        return n.takeError();
      data.push_back(std::make_shared<HostBuffer>(HostBuffer::allocate(std::max<int64_t>(*n, 1))));
      if (!data.back()->data())
        return err("cannot allocate the {} bytes of {}", *n, d.name);
      bufs[prog.steps[s].buffer] = data.back()->data();
      args.stats.packedBytes += *n;
    }
    for (int64_t e0 = 0; e0 < experts; e0 += perChunk) {
      int64_t e1 = std::min(experts, e0 + perChunk);
      if (fed) {
        if (auto e = feed->fill(e0, e1, staging.data()))
          return e;
        // The kernel addresses expert e at base + e * expertBytes.
        auto base = reinterpret_cast<uintptr_t>(staging.data()) - uintptr_t(e0 * expertBytes);
        for (size_t b = 0; b < bufs.size(); ++b)
          if (prog.buffers[b].kind == BufferKind::Argument && prog.buffers[b].argIndex == k)
            bufs[b] = reinterpret_cast<void *>(base);
      }
      for (size_t i = 0; i < steps.size(); ++i) {
        const Step &st = prog.steps[steps[i]];
        int64_t per = experts ? items[i] / experts : 0;
        int64_t i0 = chunked ? e0 * per : 0, i1 = chunked ? e1 * per : items[i];
        KernelErrorSlot slot;
        KernelFn kfn = kernels[steps[i]];
        void *const *bp = bufs.data();
        const int64_t *sp = symv.data();
        wp->parallelFor(i1 - i0, st.grain, [&](int64_t b, int64_t e) {
          kfn(bp, sp, i0 + b, i0 + e, &slot);
        });
        if (slot.failed.load())
          return kernelError(slot, syms);
      }
      if (only[k] && feed && feed->release)
        feed->release(e0, e1);
    }
    // What the runs pass for argument k: null once it may be gone.
    if (only[k] && (fed || (feed && feed->release)))
      args.ptrs[k] = nullptr;
    ++args.stats.numPacked;
    std::lock_guard<std::mutex> lock(packedMutex);
    for (size_t i = 0; i < steps.size(); ++i) {
      unsigned b = prog.steps[steps[i]].buffer;
      std::vector<int64_t> key = packedKey(b, syms);
      llvm::erase_if(packed, [&](const PackedWeights &pw) {
        return pw.buffer == b && pw.version == paramsVersion && pw.syms == key;
      });
      size_t kept = std::count_if(packed.begin(), packed.end(),
                                  [&](const PackedWeights &pw) { return pw.buffer == b; });
      if (kept >= kPackedPerBuffer)
        packed.erase(std::find_if(packed.begin(), packed.end(),
                                  [&](const PackedWeights &pw) { return pw.buffer == b; }));
      packed.push_back({b, paramsVersion, args.ptrs[k], std::move(key), data[i]});
    }
  }
  return llvm::Error::success();
}

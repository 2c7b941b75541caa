//===- Executable.cpp - Memory plan, step loop, errors, ranks -------------===//
//
// Compiling is in ExecutableCompile.cpp.
//
//===----------------------------------------------------------------------===//
#include "runtime/Executable.h"
#include "ir/Error.h"

#include "ir/Spmd.h"
#include "runtime/Binder.h"
#include "runtime/Formats.h"
#include "runtime/InProcessRanks.h"
#include "runtime/Interpreter.h"

#include "fmt/format.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <numeric>

using namespace moe;
using namespace moe::codegen;

Executable *Executable::variantFor(const SymbolBindings &syms) const {
  for (auto &v : variants)
    if (fn->variantCovers(*v->fn, syms))
      return v.get();
  return nullptr;
}

Executable::~Executable() = default;

std::vector<int64_t> Executable::packedKey(unsigned b, const SymbolBindings &syms) const {
  // A packed weight depends on the symbols of its argument's dims (uneven
  // shards), not on the others (T): one copy serves every token count.
  std::vector<std::string> names;
  const Value *arg = fn->getArgument(prog.buffers[b].argIndex);
  for (const DimExpr &d : arg->getType().dims)
    d.collectSymbols(names);
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::vector<int64_t> key;
  for (auto &n : names)
    key.push_back(syms.lookup(n));
  return key;
}

HostBuffer Executable::takeArena(size_t bytes) {
  {
    std::lock_guard<std::mutex> lock(arenaMutex);
    for (size_t i = 0; i < freeArenas.size(); ++i)
      if (freeArenas[i].size() >= bytes) {
        HostBuffer b = std::move(freeArenas[i]);
        freeArenas.erase(freeArenas.begin() + i);
        return b;
      }
  }
  // A new arena is backed in full before its first run: the memory plan
  // sizes the buffers of matmul_id for any routing, so a run that routes
  // more rows to an expert than the runs before it would write pages they
  // left untouched, a page fault in the steady state (qwen3 bf16 at T = 8
  // took one every ~15 runs). Once per arena, so once per symbol binding.
  HostBuffer b = HostBuffer::allocate(bytes); // huge pages when large
  b.touchPages();
  return b;
}

void Executable::giveBackArena(HostBuffer b) {
  if (!b.data())
    return;
  std::lock_guard<std::mutex> lock(arenaMutex);
  freeArenas.push_back(std::move(b));
  // Keep the largest few (concurrent runs, in-process ranks); free the rest.
  std::sort(freeArenas.begin(), freeArenas.end(),
            [](const HostBuffer &a, const HostBuffer &c) { return a.size() > c.size(); });
  if (freeArenas.size() > kFreeArenas)
    freeArenas.resize(kFreeArenas);
}

uint64_t Executable::newParamsVersion() {
  static std::atomic<uint64_t> next{1};
  return next++;
}

int64_t Executable::allReduceBytes(const SymbolBindings &syms) const {
  if (Executable *v = variantFor(syms))
    return v->allReduceBytes(syms);
  return moe::allReduceBytes(prog, syms);
}

unsigned Executable::numKernels() const {
  return (unsigned)std::count_if(prog.steps.begin(), prog.steps.end(),
                                 [](const Step &s) { return s.kind == StepKind::Kernel; });
}

//===----------------------------------------------------------------------===//
// Memory plan
//===----------------------------------------------------------------------===//

static constexpr int64_t kAlign = 64;

llvm::Expected<MemoryPlan> Executable::plan(const SymbolBindings &syms) {
  if (Executable *v = variantFor(syms))
    return v->plan(syms);
  std::vector<int64_t> key;
  for (auto &s : prog.symbols)
    key.push_back(syms.lookup(s));
  {
    std::lock_guard<std::mutex> lock(planMutex);
    auto it = plans.find(key);
    if (it != plans.end())
      return it->second;
  }
  size_t nb = prog.buffers.size();
  MemoryPlan p;
  p.offset.assign(nb, -1);
  p.bytes.assign(nb, 0);
  std::vector<int> first(nb, INT32_MAX), last(nb, -1);
  int nsteps = (int)prog.steps.size();
  for (int s = 0; s < nsteps; ++s) {
    for (unsigned b : prog.steps[s].writes)
      first[b] = std::min(first[b], s), last[b] = std::max(last[b], s);
    for (unsigned b : prog.steps[s].reads)
      first[b] = std::min(first[b], s), last[b] = std::max(last[b], s);
  }
  std::vector<unsigned> order;
  for (unsigned b = 0; b < nb; ++b) {
    const BufferDesc &d = prog.buffers[b];
    if (d.kind == BufferKind::Argument || d.kind == BufferKind::Packed)
      continue; // caller memory; kept across runs (runRaw)
    int64_t bytes;
    if (d.kind == BufferKind::Scratch) {
      auto v = evaluateDim(d.scratchBytes, syms);
      if (!v)
        return v.takeError();
      bytes = *v;
    } else {
      auto shape = evaluateShape(TensorType(d.dims, d.elem), syms);
      if (!shape)
        return err("{}: {}", d.name, llvm::toString(shape.takeError()));
      if (auto e = checkShape(d.elem, *shape))
        return err("{}: {}", d.name, llvm::toString(std::move(e)));
      int64_t n = 1;
      for (int64_t x : *shape)
        n *= x;
      bytes = rowBytes(d.elem, n);
    }
    if (d.isResult)
      last[b] = nsteps; // outlives the run
    if (first[b] == INT32_MAX)
      first[b] = last[b] = std::max(last[b], 0);
    p.bytes[b] = (bytes + kAlign - 1) / kAlign * kAlign;
    p.totalBytes += p.bytes[b];
    order.push_back(b);
  }
  // Largest first, each at the lowest offset free during its lifetime.
  std::stable_sort(order.begin(), order.end(),
                   [&](unsigned a, unsigned b) { return p.bytes[a] > p.bytes[b]; });
  std::vector<unsigned> placed;
  for (unsigned b : order) {
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (unsigned o : placed)
      if (!(last[o] < first[b] || last[b] < first[o]))
        busy.push_back({p.offset[o], p.offset[o] + p.bytes[o]});
    std::sort(busy.begin(), busy.end());
    int64_t off = 0;
    for (auto &[lo, hi] : busy) {
      if (off + p.bytes[b] <= lo)
        break;
      off = std::max(off, hi);
    }
    p.offset[b] = off;
    p.peakBytes = std::max(p.peakBytes, off + p.bytes[b]);
    placed.push_back(b);
  }
  std::lock_guard<std::mutex> lock(planMutex);
  plans[key] = p;
  return p;
}

//===----------------------------------------------------------------------===//
// Running
//===----------------------------------------------------------------------===//

llvm::Error Executable::kernelError(const KernelErrorSlot &slot, const SymbolBindings &syms) {
  if ((size_t)slot.site >= prog.errorSites.size())
    return err("a kernel failed at an unknown site {}", slot.site);
  const ErrorSite &site = prog.errorSites[slot.site];
  const Operation &op = *site.op;
  switch (site.kind) {
  case ErrorSite::Kind::ExpertId:
  case ErrorSite::Kind::BiasId: {
    auto k = evaluateDim(op.getOperand(2)->getType().dims[1], syms);
    int64_t kk = k ? std::max<int64_t>(*k, 1) : (llvm::consumeError(k.takeError()), 1);
    return err("{}: token {}, slot {}: {} id {} is out of range [0, {})", op.getLabel(),
               slot.pos / kk, slot.pos % kk,
               site.kind == ErrorSite::Kind::ExpertId ? "expert" : "bias", slot.id, slot.limit);
  }
  case ErrorSite::Kind::DivByZero: {
    auto shape = evaluateShape(op.getResult(0)->getType(), syms);
    if (!shape) {
      llvm::consumeError(shape.takeError());
      return err("{}: i32 division by zero", op.getLabel());
    }
    return err("{}: i32 division by zero at result index {}", op.getLabel(),
               formatIndex(slot.pos, *shape));
  }
  case ErrorSite::Kind::GatherIndex: {
    auto idxShape = evaluateShape(op.getOperand(1)->getType(), syms);
    auto srcShape = evaluateShape(op.getOperand(0)->getType(), syms);
    if (!idxShape || !srcShape) {
      llvm::consumeError(idxShape.takeError());
      llvm::consumeError(srcShape.takeError());
      return err("{}: index {} is out of range [0, {})", op.getLabel(), slot.id, slot.limit);
    }
    int64_t ax = *normalizeAxis(op.getInfo().attrOrDefault(op.attrs(), "axis")->getInt(),
                                srcShape->size());
    std::string token;
    if (!idxShape->empty()) {
      int64_t rest = 1;
      for (int64_t d : llvm::ArrayRef<int64_t>(*idxShape).drop_front())
        rest *= d;
      token = fmt::format(" (token {})", rest ? slot.pos / rest : 0);
    }
    return err("{}: index {} at indices{}{} is out of range [0, {}) for axis {} of {}",
               op.getLabel(), slot.id, formatIndex(slot.pos, *idxShape), token, slot.limit, ax,
               formatShape(*srcShape));
  }
  }
  return err("a kernel failed");
}

llvm::Expected<std::vector<Tensor>> Executable::runRaw(llvm::ArrayRef<const void *> args,
                                                       const SymbolBindings &syms,
                                                       const RunOptions &ro) {
  if (auto e = checkSymbols(*fn, syms))
    return e;
  if (Executable *v = variantFor(syms)) {
    RunOptions vro = ro;
    if (!vro.pool && !vro.singleThreaded)
      vro.pool = pool.get();
    return v->runRaw(args, syms, vro);
  }
  if (args.size() != fn->getNumArguments())
    return err("@{} takes {} arguments, got {}", fn->getName(), fn->getNumArguments(),
               args.size());
  using ProfClock = std::chrono::steady_clock;
  auto msSince = [](ProfClock::time_point t0) {
    return std::chrono::duration<double, std::milli>(ProfClock::now() - t0).count();
  };
  ProfClock::time_point runStart = ro.profile ? ProfClock::now() : ProfClock::time_point();
  auto planned = plan(syms);
  if (!planned)
    return planned.takeError();
  const MemoryPlan &p = *planned;

  // The arena, 64-byte aligned; every buffer pointer non-null. Reused from
  // an earlier run when one is free (no page faults in steady state), and
  // given back when this run ends, whichever way.
  size_t arenaBytes = std::max<int64_t>(p.peakBytes, kAlign);
  struct ArenaLease {
    Executable &x;
    HostBuffer buf;
    ~ArenaLease() { x.giveBackArena(std::move(buf)); }
  } lease{*this, takeArena(arenaBytes)};
  HostBuffer &arena = lease.buf;
  if (!arena.data())
    return err("cannot allocate the {}-byte arena of @{}", arenaBytes, fn->getName());
  static const int64_t empty[kAlign / 8] = {};
  std::vector<void *> bufs(prog.buffers.size());
  for (size_t b = 0; b < bufs.size(); ++b) {
    const BufferDesc &d = prog.buffers[b];
    if (d.kind == BufferKind::Argument)
      bufs[b] = const_cast<void *>(args[d.argIndex] ? args[d.argIndex] : empty);
    else
      bufs[b] = arena.data() + p.offset[b];
  }
  // Results into caller memory: the kernels write there directly, unless
  // the result's buffer is an argument or serves an earlier result too.
  std::vector<std::pair<unsigned, void *>> copyOut; // (buffer, destination)
  if (!ro.results.empty()) {
    if (ro.results.size() != prog.results.size())
      return err("@{} has {} results, got {} destinations", fn->getName(),
                 prog.results.size(), ro.results.size());
    std::vector<bool> redirected(bufs.size(), false);
    for (size_t k = 0; k < prog.results.size(); ++k) {
      unsigned b = prog.results[k];
      if (!ro.results[k]) // an empty result: nothing to write
        continue;
      if (prog.buffers[b].kind == BufferKind::Temp && !redirected[b]) {
        bufs[b] = ro.results[k];
        redirected[b] = true;
      } else {
        copyOut.push_back({b, ro.results[k]});
      }
    }
  }
  std::vector<int64_t> symv;
  for (auto &s : prog.symbols)
    symv.push_back(syms.lookup(s));

  // Repacked weights: reused when this version already packed them from the
  // same memory, else packed by their prepare step into a new buffer.
  std::vector<std::shared_ptr<HostBuffer>> packedData(bufs.size());
  std::vector<bool> packedReady(bufs.size(), false);
  for (size_t b = 0; b < bufs.size(); ++b) {
    const BufferDesc &d = prog.buffers[b];
    if (d.kind != BufferKind::Packed)
      continue;
    const void *src = args[d.argIndex];
    std::vector<int64_t> key = packedKey(b, syms);
    if (ro.paramsVersion) {
      std::lock_guard<std::mutex> lock(packedMutex);
      for (auto &pw : packed)
        if (pw.buffer == b && pw.version == ro.paramsVersion && pw.source == src &&
            pw.syms == key) {
          packedData[b] = pw.data;
          packedReady[b] = true;
        }
    }
    if (!packedReady[b]) {
      if (!src) { // released after packWeights, or never given
        const Value *arg = fn->getArgument(d.argIndex);
        auto shape = evaluateShape(arg->getType(), syms);
        if (!shape)
          return shape.takeError();
        if (std::accumulate(shape->begin(), shape->end(), int64_t(1), std::multiplies<>()))
          return err("@{}: argument %{} is null and no packed copy of it is kept for these "
                     "symbols and params version (packWeights packs for one binding)",
                     fn->getName(), arg->getName());
      }
      auto bytes = evaluateDim(d.scratchBytes, syms);
      if (!bytes)
        return bytes.takeError();
      packedData[b] = std::make_shared<HostBuffer>(HostBuffer::allocate(std::max<int64_t>(*bytes, 1)));
      if (!packedData[b]->data())
        return err("cannot allocate the {} bytes of {}", *bytes, d.name);
    }
    bufs[b] = packedData[b]->data();
  }

  WorkerPool *wp = ro.pool ? ro.pool : pool.get();
  for (size_t s = 0; s < prog.steps.size(); ++s) {
    const Step &st = prog.steps[s];
    if (st.prepare && packedReady[st.buffer])
      continue;
    ProfClock::time_point stepStart = ro.profile ? ProfClock::now() : ProfClock::time_point();
    if (st.kind == StepKind::AllReduce) {
      if (!ro.comm)
        continue; // one rank: the identity
      auto shape = evaluateShape(TensorType(prog.buffers[st.buffer].dims, ElemType::F32), syms);
      if (!shape)
        return shape.takeError();
      int64_t n = 1;
      for (int64_t x : *shape)
        n *= x;
      ElemType elem = prog.buffers[st.buffer].elem;
      llvm::Error e = elem == ElemType::F32
                          ? ro.comm->allReduceSum(static_cast<float *>(bufs[st.buffer]), n)
                          : ro.comm->allReduceSum(static_cast<uint16_t *>(bufs[st.buffer]), n,
                                                  elem); // f16/bf16: f32 sum, one rounding
      if (e)
        return err("{}: {}", st.op->getLabel(), llvm::toString(std::move(e)));
      if (ro.profile)
        ro.profile->addStep(st, msSince(stepStart), 0, 0);
      continue;
    }
    int64_t items = 1;
    for (auto &[d, div] : st.extent) {
      auto v = evaluateDim(d, syms);
      if (!v)
        return v.takeError();
      items *= (*v + div - 1) / div;
    }
    KernelErrorSlot slot;
    KernelFn k = kernels[s];
    void *const *bp = bufs.data();
    const int64_t *sp = symv.data();
    auto body = [&](int64_t b, int64_t e) {
      if (!slot.failed.load(std::memory_order_relaxed))
        k(bp, sp, b, e, &slot);
    };
    if (ro.singleThreaded)
      body(0, items);
    else
      wp->parallelFor(items, st.grain, body);
    if (slot.failed.load())
      return kernelError(slot, syms);
    if (ro.profile) {
      double ms = msSince(stepStart);
      StepWork w = stepWork(prog, st, syms, bufs.data());
      ro.profile->addStep(st, ms, w.flops, w.weightBytes);
    }
  }

  if (ro.paramsVersion) {
    std::lock_guard<std::mutex> lock(packedMutex);
    for (size_t b = 0; b < bufs.size(); ++b) {
      if (!packedData[b] || packedReady[b])
        continue;
      std::vector<int64_t> key = packedKey(b, syms);
      const void *src = args[prog.buffers[b].argIndex];
      // A concurrent run may have packed the same weight meanwhile: keep one.
      if (std::any_of(packed.begin(), packed.end(), [&](const PackedWeights &pw) {
            return pw.buffer == b && pw.version == ro.paramsVersion && pw.source == src &&
                   pw.syms == key;
          }))
        continue;
      size_t kept = std::count_if(packed.begin(), packed.end(),
                                  [&](const PackedWeights &pw) { return pw.buffer == b; });
      if (kept >= kPackedPerBuffer)
        packed.erase(std::find_if(packed.begin(), packed.end(),
                                  [&](const PackedWeights &pw) { return pw.buffer == b; }));
      packed.push_back({(unsigned)b, ro.paramsVersion, src, std::move(key), packedData[b]});
    }
  }

  std::vector<Tensor> out;
  if (!ro.results.empty()) {
    for (auto [b, to] : copyOut) {
      const BufferDesc &d = prog.buffers[b];
      auto shape = evaluateShape(TensorType(d.dims, d.elem), syms);
      if (!shape)
        return shape.takeError();
      int64_t n = 1;
      for (int64_t x : *shape)
        n *= x;
      std::memmove(to, bufs[b], rowBytes(d.elem, n));
    }
    return out;
  }
  for (unsigned b : prog.results) {
    const BufferDesc &d = prog.buffers[b];
    auto shape = evaluateShape(TensorType(d.dims, d.elem), syms);
    if (!shape)
      return shape.takeError();
    out.push_back(Tensor::fromStored(d.elem, std::move(*shape), bufs[b]));
  }
  if (ro.profile)
    ro.profile->addRun(msSince(runStart), ro.comm ? moe::allReduceBytes(prog, syms) : 0);
  return out;
}

llvm::Expected<StoredArgs> Executable::prepare(llvm::ArrayRef<Tensor> args,
                                               const SymbolBindings &syms) {
  if (auto e = checkSymbols(*fn, syms))
    return e;
  if (auto e = checkArguments(*fn, args, syms))
    return e;
  StoredArgs out;
  for (const Tensor &t : args)
    out.ptrs.push_back(storedData(t, out.storage));
  return out;
}

llvm::Expected<std::vector<Tensor>> Executable::run(llvm::ArrayRef<Tensor> args,
                                                    const SymbolBindings &syms,
                                                    const RunOptions &ro) {
  auto stored = prepare(args, syms);
  if (!stored)
    return stored.takeError();
  return runRaw(stored->ptrs, syms, ro);
}

//===----------------------------------------------------------------------===//
// In-process ranks
//===----------------------------------------------------------------------===//

llvm::Expected<std::vector<std::vector<Tensor>>> moe::runOnRanks(Executable &exe, Binder &binder,
                                                                 const RankRunOptions &ro) {
  const Function &f = exe.function();
  int ranks = (int)numRanks(f);
  std::vector<std::vector<Tensor>> results(ranks);
  std::vector<StoredArgs> stored;
  // The arguments stay bound for every repeat: weights repacked once, at
  // bind time (ro.packAtBind), rank after rank on the Executable's pool.
  // A params version per rank: each rank's packed copies are its own.
  std::vector<uint64_t> version(ranks);
  for (auto &v : version)
    v = Executable::newParamsVersion();
  auto b0 = std::chrono::steady_clock::now();
  for (int r = 0; r < ranks; ++r) {
    SymbolBindings syms = binder.symbolsForRank(r);
    if (auto e = checkSymbols(f, syms))
      return e;
    auto s = ro.packAtBind ? binder.storedArgsForRank(r, exe.packedOnly(syms))
                           : binder.storedArgsForRank(r);
    if (!s)
      return s.takeError();
    if (ro.packAtBind)
      if (auto e = exe.packWeights(*s, syms, version[r]))
        return e;
    stored.push_back(std::move(*s));
  }
  if (ro.bind) {
    *ro.bind = BindStats();
    for (auto &s : stored) {
      ro.bind->numInPlace += s.stats.numInPlace;
      ro.bind->copiedBytes += s.stats.copiedBytes;
      ro.bind->numPacked += s.stats.numPacked;
      ro.bind->packedBytes += s.stats.packedBytes;
    }
    ro.bind->ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - b0).count();
  }
  // Each rank's pool lives across the repeats (no thread start-up in a run).
  std::vector<std::unique_ptr<WorkerPool>> pools(ranks);
  if (ranks > 1)
    for (auto &p : pools)
      p = std::make_unique<WorkerPool>(std::max(1u, ro.threadsPerRank));
  std::vector<Profile> profiles(ro.profile ? ranks : 0);
  if (ro.rankMs)
    ro.rankMs->assign(ranks, {});
  std::vector<double> rankMs(ranks, 0);
  for (unsigned i = 0; i < std::max(1u, ro.repeat); ++i) {
    auto t0 = std::chrono::steady_clock::now();
    auto out = gatherRanks(ranks, [&](int r, Communicator *comm)
                                      -> llvm::Expected<std::vector<Tensor>> {
      RunOptions o;
      o.paramsVersion = version[r];
      o.profile = ro.profile ? &profiles[r] : nullptr;
      if (comm) { // else one rank: the Executable's own pool
        o.comm = comm;
        o.pool = pools[r].get();
      }
      auto r0 = std::chrono::steady_clock::now();
      auto res = exe.runRaw(stored[r].ptrs, binder.symbolsForRank(r), o);
      rankMs[r] =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - r0).count();
      return res;
    });
    if (!out)
      return out.takeError();
    results = std::move(*out);
    if (ro.runMs)
      ro.runMs->push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    if (ro.rankMs)
      for (int r = 0; r < ranks; ++r)
        (*ro.rankMs)[r].push_back(rankMs[r]);
  }
  for (Profile &p : profiles)
    ro.profile->merge(p);
  return results;
}

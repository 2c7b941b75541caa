//===- Profile.cpp - Per-kernel times of JIT runs -------------------------===//
//
// See Profile.h.
//
//===----------------------------------------------------------------------===//
#include "runtime/Profile.h"
#include "ir/Error.h"

#include "runtime/Tensor.h"

#include "fmt/format.h"

#include <algorithm>

using namespace moe;
using namespace moe::codegen;

KernelTimes &Profile::row(llvm::StringRef label, llvm::StringRef symbol) {
  // By label and symbol: steps that share one kernel (codegen's
  // shareIdenticalKernels) keep their own rows.
  std::string key = (label + llvm::StringRef("\0", 1) + symbol).str();
  auto [it, fresh] = index.try_emplace(key, rows.size());
  if (fresh) {
    KernelTimes k;
    k.label = label.str();
    k.symbol = symbol.str();
    rows.push_back(std::move(k));
  }
  return rows[it->second];
}

void Profile::addStep(const Step &st, double ms, double flops, double weightBytes) {
  KernelTimes &k = row(st.label, st.symbol);
  ++k.calls;
  k.ms += ms;
  k.flops += flops;
  k.weightBytes += weightBytes;
}

void Profile::addRun(double ms, int64_t allReduceBytes) {
  ++numRuns;
  totalRunMs += ms;
  reducedBytes += allReduceBytes;
}

void Profile::merge(const Profile &o) {
  for (const KernelTimes &x : o.rows) {
    KernelTimes &k = row(x.label, x.symbol);
    k.calls += x.calls;
    k.ms += x.ms;
    k.flops += x.flops;
    k.weightBytes += x.weightBytes;
  }
  numRuns += o.numRuns;
  totalRunMs += o.totalRunMs;
  reducedBytes += o.reducedBytes;
}

// Lines "run <runs> <ms> <bytes>" and "k <calls> <ms> <flops> <bytes>
// <symbol or -> <label>"; the label is last (it may hold spaces).
std::string Profile::serialize() const {
  std::string s = fmt::format("run {} {:.17g} {}\n", numRuns, totalRunMs, reducedBytes);
  for (const KernelTimes &k : rows)
    s += fmt::format("k {} {:.17g} {:.17g} {:.17g} {} {}\n", k.calls, k.ms, k.flops,
                     k.weightBytes, k.symbol.empty() ? "-" : k.symbol, k.label);
  return s;
}

llvm::Expected<Profile> Profile::deserialize(llvm::StringRef text) {
  Profile p;
  llvm::SmallVector<llvm::StringRef> lines;
  text.split(lines, '\n', -1, /*KeepEmpty=*/false);
  for (llvm::StringRef line : lines) {
    llvm::SmallVector<llvm::StringRef> f;
    line.split(f, ' ', 6, /*KeepEmpty=*/false);
    auto num = [](llvm::StringRef s, double &out) { return s.getAsDouble(out); };
    double a, b, c, d;
    if (f.size() == 4 && f[0] == "run" && !num(f[1], a) && !num(f[2], b) && !num(f[3], c)) {
      p.numRuns += (uint64_t)a;
      p.totalRunMs += b;
      p.reducedBytes += (int64_t)c;
      continue;
    }
    if (f.size() == 7 && f[0] == "k" && !num(f[1], a) && !num(f[2], b) && !num(f[3], c) &&
        !num(f[4], d)) {
      KernelTimes &k = p.row(f[6], f[5] == "-" ? "" : f[5]);
      k.calls += (uint64_t)a;
      k.ms += b;
      k.flops += c;
      k.weightBytes += d;
      continue;
    }
    return err("malformed profile line '{}'", line.str());
  }
  return p;
}

void Profile::print(llvm::raw_ostream &os, llvm::StringRef title) const {
  std::vector<const KernelTimes *> sorted;
  double inKernels = 0;
  for (const KernelTimes &k : rows) {
    sorted.push_back(&k);
    inKernels += k.ms;
  }
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const KernelTimes *a, const KernelTimes *b) { return a->ms > b->ms; });
  double total = totalRunMs > 0 ? totalRunMs : 1;
  auto rate = [](double amount, double ms) {
    return amount > 0 && ms > 0 ? fmt::format("{:.2f}", amount / ms / 1e6) : std::string("-");
  };
  os << title << "\n";
  os << fmt::format("{:>7} {:>11} {:>7} {:>10} {:>9} {:>8}  {}\n", "%run", "total ms", "calls",
                    "ms/call", "GFLOP/s", "GB/s", "kernel [symbol]");
  for (const KernelTimes *k : sorted)
    os << fmt::format("{:>6.2f}% {:>11.3f} {:>7} {:>10.4f} {:>9} {:>8}  {}{}\n",
                      100 * k->ms / total, k->ms, k->calls, k->calls ? k->ms / k->calls : 0,
                      rate(k->flops, k->ms), rate(k->weightBytes, k->ms), k->label,
                      k->symbol.empty() ? "" : " [" + k->symbol + "]");
  double outside = std::max(0.0, totalRunMs - inKernels);
  os << fmt::format("{:>6.2f}% {:>11.3f} {:>7} {:>10} {:>9} {:>8}  {}\n", 100 * outside / total,
                    outside, numRuns, "", "-", "-",
                    "(outside kernels: memory plan, arena, packing checks, results)");
  os << fmt::format("{:>6.2f}% {:>11.3f} {:>7} {:>10.4f} {:>9} {:>8}  {}\n", 100.0, totalRunMs,
                    numRuns, numRuns ? totalRunMs / (double)numRuns : 0, "", "", "run");
  if (reducedBytes > 0 && numRuns > 0)
    os << fmt::format("all_reduce: {} bytes per rank and run\n", reducedBytes / (int64_t)numRuns);
}

//===----------------------------------------------------------------------===//
// Work of a step
//===----------------------------------------------------------------------===//

static int64_t product(const std::vector<int64_t> &v) {
  int64_t n = 1;
  for (int64_t x : v)
    n *= x;
  return n;
}

/// The buffer holding `v` (through reshapes, which share their source's
/// buffer), or -1 when it is fused.
static int bufferOf(const Program &prog, const Value *v) {
  while (v) {
    for (size_t b = 0; b < prog.buffers.size(); ++b)
      if (prog.buffers[b].value == v && (prog.buffers[b].kind == BufferKind::Argument ||
                                         prog.buffers[b].kind == BufferKind::Temp))
        return (int)b;
    const Operation *d = v->getDefiningOp();
    if (!d || !d->is(OpKind::Reshape))
      return -1;
    v = d->getOperand(0);
  }
  return -1;
}

StepWork moe::stepWork(const Program &prog, const Step &st, const SymbolBindings &syms,
                       void *const *bufs) {
  StepWork w;
  if (st.kind != StepKind::Kernel || !st.main || !st.op)
    return w;
  const Operation &op = *st.op;
  if (!op.is(OpKind::Matmul) && !op.is(OpKind::MatmulId))
    return w;
  auto out = evaluateShape(op.getResult()->getType(), syms);
  auto x = evaluateShape(op.getOperand(0)->getType(), syms);
  auto wt = evaluateShape(op.getOperand(1)->getType(), syms);
  if (!out || !x || !wt || x->empty() || wt->empty()) {
    if (!out)
      llvm::consumeError(out.takeError());
    if (!x)
      llvm::consumeError(x.takeError());
    if (!wt)
      llvm::consumeError(wt.takeError());
    return w;
  }
  int64_t K = x->back();
  w.flops = 2.0 * (double)product(*out) * (double)K;
  ElemType we = op.getOperand(1)->getType().elem;
  int64_t wholeBytes = rowBytes(we, product(*wt));
  if (op.is(OpKind::Matmul)) {
    w.weightBytes = (double)wholeBytes;
    return w;
  }
  // matmul_id: the experts its ids select in this run.
  int64_t E = (*wt)[0], perExpert = E > 0 ? wholeBytes / E : 0;
  auto ids = evaluateShape(op.getOperand(2)->getType(), syms);
  if (!ids) {
    llvm::consumeError(ids.takeError());
    return w;
  }
  int64_t n = product(*ids);
  int b = bufferOf(prog, op.getOperand(2));
  int64_t used = 0;
  if (b >= 0 && bufs[b]) {
    std::vector<char> seen(E, 0);
    const int32_t *id = static_cast<const int32_t *>(bufs[b]);
    for (int64_t i = 0; i < n; ++i)
      if (id[i] >= 0 && id[i] < E && !seen[id[i]]) {
        seen[id[i]] = 1;
        ++used;
      }
  } else {
    used = std::min(E, n); // fused ids: at most this many
  }
  w.weightBytes = (double)(used * perExpert);
  return w;
}

int64_t moe::allReduceBytes(const Program &prog, const SymbolBindings &syms) {
  int64_t bytes = 0;
  for (const Step &st : prog.steps) {
    if (st.kind != StepKind::AllReduce)
      continue;
    const BufferDesc &d = prog.buffers[st.buffer];
    auto shape = evaluateShape(TensorType(d.dims, ElemType::F32), syms);
    if (!shape) {
      llvm::consumeError(shape.takeError());
      continue;
    }
    bytes += rowBytes(d.elem, product(*shape));
  }
  return bytes;
}

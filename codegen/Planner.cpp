//===- Planner.cpp - Which values get buffers, which kernels run ----------===//
//
// Lowers a function in two steps:
//   1. Buffers. Arguments have one. A value gets one when an op must read it
//      from memory (an operand in its lowering's `memoryOperands`) and it is
//      not a cheap view, when it is used twice and not cheap (unless every
//      use is a slice and no two overlap: each element is still computed
//      once), when it is returned, and always for the ops with kernels of
//      their own (matmuls, reductions, sorts, norms, all_reduce). A reshape
//      of a value with a buffer shares that buffer (row-major order is
//      unchanged): no kernel, no copy. Every other value (elementwise
//      chains, views, gathers, add_id, concat, constants) is fused: computed
//      inside its consumers' loops by its lowering's `expr`.
//   2. Steps, in body order, one or more per materialised value: the op's
//      own kernel lowering, or the store kernel of its fused expression.
//      Neighbouring values whose kernels are loops of row bodies over the
//      same positions, each reading the others only at its own position's
//      rows, share one kernel (a row group: an MoE layer's routing, softmax
//      to the weights' sum, is one). Each step records the buffers it reads
//      and writes, for the runtime's memory plan.
// Where each op is lowered: Lowering.h.
//
//===----------------------------------------------------------------------===//
#include "codegen/Lowering.h"
#include "ir/Error.h"
#include "ir/OpInfo.h"
#include "ir/Printer.h"

#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/SmallPtrSet.h"

#include "fmt/format.h"

using namespace moe;
using namespace moe::codegen;

static bool hasOwnKernel(OpKind k) { return loweringOf(k).kernel != nullptr; }

static bool readsFromMemory(const Operation &user, unsigned i) {
  return i < 32 && (loweringOf(user.getKind()).memoryOperands >> i & 1);
}

static bool isMatmul(const Operation &op) {
  return op.is(OpKind::Matmul) || op.is(OpKind::MatmulId);
}

static std::string symbolName(std::string name) {
  for (char &c : name)
    if (!isalnum((unsigned char)c) && c != '_')
      c = '_';
  return name;
}

unsigned StepBuilder::addBuffer(BufferDesc d) {
  S.buffers.push_back(std::move(d));
  return S.buffers.size() - 1;
}

void StepBuilder::collectReads(const Value *v, std::vector<unsigned> &out) const {
  auto it = S.bufferOf.find(v);
  if (it != S.bufferOf.end()) {
    out.push_back(it->second);
    return;
  }
  for (const Value *o : v->getDefiningOp()->getOperands())
    collectReads(o, out);
}

static std::string opLabel(const Operation &op) {
  return fmt::format("{} %{}", op.getName().str(), op.getResult()->getName());
}

Step StepBuilder::kernelStep(const std::string &what, bool unroll,
                             llvm::function_ref<Extent(KernelEmitter &)> body) {
  std::string name = symbolName(fmt::format("{}_k{}_{}", prefix, steps.size(), what));
  KernelEmitter E(S, name);
  E.unrollLoops = unroll;
  Extent x = body(E);
  Step s;
  s.symbol = std::move(name);
  s.extent = x.factors;
  s.grain = x.grain;
  return s;
}

void StepBuilder::addKernel(const Operation &op, llvm::StringRef suffix,
                            std::vector<unsigned> writes,
                            llvm::function_ref<Extent(KernelEmitter &)> body,
                            std::vector<unsigned> extraReads) {
  Step s = kernelStep(fmt::format("{}_{}{}", op.getName().str(), op.getResult()->getName(),
                                  suffix.str()),
                      suffix.empty() && isMatmul(op), body);
  s.main = suffix.empty();
  s.label = s.main || writes.empty() ? opLabel(op) : S.buffers[writes[0]].name;
  s.op = &op;
  s.writes = std::move(writes);
  for (const Value *o : op.getOperands())
    collectReads(o, s.reads);
  s.reads.insert(s.reads.end(), extraReads.begin(), extraReads.end());
  // What a matmul's kernels read of its weight (Executable::packedOnly
  // relies on it): a helper (routing, quantising, gathering activations)
  // nothing; a kernel streaming the weight repacked the Packed buffer, not
  // the argument it came from.
  if (isMatmul(op)) {
    auto weight = S.bufferOf.find(op.getOperand(1));
    bool packed = llvm::any_of(extraReads, [&](unsigned r) {
      return S.buffers[r].kind == BufferKind::Packed;
    });
    if (weight != S.bufferOf.end() && (!s.main || packed))
      llvm::erase_if(s.reads, [&](unsigned b) { return b == weight->second; });
  }
  steps.push_back(std::move(s));
}

void StepBuilder::addRowGroup(llvm::ArrayRef<const Operation *> ops, std::vector<unsigned> writes,
                              llvm::function_ref<Extent(KernelEmitter &)> body) {
  Step s = kernelStep(fmt::format("rows_{}_{}", ops.front()->getResult()->getName(),
                                  ops.back()->getResult()->getName()),
                      false, body);
  std::vector<std::string> labels;
  for (const Operation *op : ops) {
    labels.push_back(opLabel(*op));
    for (const Value *o : op->getOperands())
      collectReads(o, s.reads);
  }
  s.label = llvm::join(labels, " + ");
  s.op = ops.front();
  s.writes = std::move(writes);
  steps.push_back(std::move(s));
}

void StepBuilder::markPrepare(unsigned buf) {
  steps.back().prepare = true;
  steps.back().buffer = buf;
  // It reads the weight argument alone (not the op's activations).
  steps.back().reads.clear();
  for (unsigned b = 0; b < S.buffers.size(); ++b)
    if (S.buffers[b].kind == BufferKind::Argument && S.buffers[b].argIndex == S.buffers[buf].argIndex)
      steps.back().reads.push_back(b);
  // Runs once per binding: optimised for size, which halves its compile time.
  if (llvm::Function *fn = S.module.getFunction(steps.back().symbol)) {
    fn->addFnAttr(llvm::Attribute::OptimizeForSize);
    fn->addFnAttr(llvm::Attribute::MinSize);
  }
}

void StepBuilder::addAllReduce(const Operation &op, unsigned buf) {
  Step s;
  s.kind = StepKind::AllReduce;
  s.label = fmt::format("{} %{} (sum over ranks)", op.getName().str(),
                        op.getResult()->getName());
  s.op = &op;
  s.buffer = buf;
  s.reads = s.writes = {buf};
  steps.push_back(std::move(s));
}

namespace {
struct Planner {
  const Function &f;
  LowerState &S;
  StepBuilder &steps;
  llvm::SmallPtrSet<const Value *, 16> returned;
  /// Values whose elements are cheap to recompute (a constant, or views down
  /// to a buffer or a constant).
  llvm::SmallPtrSet<const Value *, 16> cheap;

  bool wantsBuffer(const Value *v);
  llvm::Error plan();
  void emit();

  // Row groups (see emit()).
  std::optional<Shape> positionsOf(const Operation &op) const;
  bool dependsOn(const Value *v, const llvm::DenseSet<unsigned> &bufs) const;
  bool rowLocal(const Value *v, const Shape &positions, const llvm::DenseSet<unsigned> &bufs) const;
  bool rowLocalOp(const Operation &op, const Shape &positions,
                  const llvm::DenseSet<unsigned> &bufs) const;
  void emitOne(const Operation &op, unsigned buf);
  void emitRowGroup(llvm::ArrayRef<const Operation *> ops);
};
} // namespace

/// Every use of `v` is a slice along one axis and no two slices overlap
/// (their ranges provably apart, symbolic bounds included): fused, each
/// element of `v` is computed at most once whichever slice reads it, so
/// several uses need no buffer (gpt-oss's gate_up_b, the add_id of the
/// merged gate_up product, read as its gate and up halves).
static bool usedThroughDisjointSlices(const Value *v) {
  struct Range {
    DimExpr start, end;
  };
  std::vector<Range> ranges;
  int64_t axis = -1;
  for (auto &u : v->getUses()) {
    const Operation &s = *u.user;
    if (!s.is(OpKind::Slice))
      return false;
    int64_t ax = axisOf(s, v->getType().rank());
    if (axis >= 0 && ax != axis)
      return false;
    axis = ax;
    DimExpr start = s.getAttr("start")->getDim();
    ranges.push_back({start, start + s.getAttr("size")->getDim()});
  }
  auto apart = [](const Range &a, const Range &b) { // a ends before b starts
    std::optional<int64_t> gap = (b.start - a.end).getConstant();
    return gap && *gap >= 0;
  };
  for (size_t i = 0; i < ranges.size(); ++i)
    for (size_t j = i + 1; j < ranges.size(); ++j)
      if (!apart(ranges[i], ranges[j]) && !apart(ranges[j], ranges[i]))
        return false;
  return true;
}

bool Planner::wantsBuffer(const Value *v) {
  const Operation &op = *v->getDefiningOp();
  if (returned.count(v) || hasOwnKernel(op.getKind()))
    return true;
  bool isCheap = op.is(OpKind::Constant) ||
                 (op.getInfo().has(Trait::ViewLike) &&
                  (S.bufferOf.count(op.getOperand(0)) || cheap.count(op.getOperand(0))));
  for (auto &u : v->getUses())
    if (readsFromMemory(*u.user, u.index) && (!isCheap || isMatmul(*u.user)))
      return true;
  if (isCheap) {
    cheap.insert(v);
    return false;
  }
  return v->getUses().size() > 1 && !usedThroughDisjointSlices(v);
}

llvm::Error Planner::plan() {
  for (unsigned k = 0; k < f.getNumArguments(); ++k) {
    const Value *a = f.getArgument(k);
    BufferDesc d;
    d.kind = BufferKind::Argument;
    d.value = a;
    d.argIndex = k;
    d.elem = a->getType().elem;
    d.dims = a->getType().dims;
    d.name = "%" + a->getName();
    S.bufferOf[a] = steps.addBuffer(std::move(d));
  }
  if (Operation *ret = f.getReturn())
    for (const Value *v : ret->getOperands())
      returned.insert(v);
  for (const Operation &op : f.getBody()) {
    if (op.is(OpKind::Return))
      continue;
    if (op.getNumResults() != 1)
      return err("{}: ops with {} results are not supported", op.getLabel(), op.getNumResults());
    const Value *v = op.getResult();
    if (!wantsBuffer(v))
      continue;
    const TensorType &ty = v->getType();
    if (op.is(OpKind::Reshape) && !returned.count(v) && S.bufferOf.count(op.getOperand(0))) {
      S.bufferOf[v] = S.bufferOf.lookup(op.getOperand(0)); // an alias
      continue;
    }
    if (isQuantized(ty.elem))
      return err("{}: a block-quantised value in memory that is not an argument (the JIT "
                 "reads quantised data only from arguments and reshapes of them)",
                 op.getLabel());
    if (op.is(OpKind::AllReduce) && ty.elem != ElemType::F32 && ty.elem != ElemType::F16 &&
        ty.elem != ElemType::BF16)
      return err("{}: all_reduce of {} is not supported (f32, f16 and bf16 only)",
                 op.getLabel(), elemTypeName(ty.elem).str());
    if (op.is(OpKind::MatmulId) && !op.getOperand(1)->getType().dims[0].getConstant())
      return err("{}: the expert count ({}) must be static for the JIT", op.getLabel(),
                 op.getOperand(1)->getType().dims[0].str());
    BufferDesc d;
    d.kind = BufferKind::Temp;
    d.value = v;
    d.elem = ty.elem;
    d.dims = ty.dims;
    d.isResult = returned.count(v);
    d.name = "%" + v->getName();
    S.bufferOf[v] = steps.addBuffer(std::move(d));
  }
  return llvm::Error::success();
}

void Planner::emitOne(const Operation &op, unsigned buf) {
  const OpLowering &l = loweringOf(op.getKind());
  if (l.kernel) {
    l.kernel(steps, op, buf);
    return;
  }
  const Value *v = op.getResult();
  steps.addKernel(op, "", {buf}, [&](KernelEmitter &E) {
    return emitStoreKernel(E, v, [&](llvm::ArrayRef<llvm::Value *> idx) {
      return E.emitCompute(v, idx);
    });
  });
}

/// The positions of the kernel that fills `op`'s buffer when it is a loop
/// of row bodies over its leading dims: a store kernel's rows, or
/// rowPositions of a kernel of its own.
std::optional<Shape> Planner::positionsOf(const Operation &op) const {
  const OpLowering &l = loweringOf(op.getKind());
  if (l.kernel)
    return rowPositions(op);
  const Shape &dims = op.getResult()->getType().dims;
  if (dims.empty())
    return std::nullopt;
  return Shape(dims.begin(), dims.end() - 1);
}

/// Does computing `v` read one of `bufs`?
bool Planner::dependsOn(const Value *v, const llvm::DenseSet<unsigned> &bufs) const {
  auto it = S.bufferOf.find(v);
  if (it != S.bufferOf.end())
    return bufs.count(it->second);
  return llvm::any_of(v->getDefiningOp()->getOperands(),
                      [&](const Value *o) { return dependsOn(o, bufs); });
}

static bool leadingDimsAre(const Value *v, const Shape &positions) {
  const Shape &d = v->getType().dims;
  return d.size() >= positions.size() &&
         std::equal(positions.begin(), positions.end(), d.begin());
}

/// Read at position `pos` (an index of its leading dims), does `v` read
/// the buffers `bufs` at that position's rows only? Values that do not
/// read them at all are read however they like.
bool Planner::rowLocal(const Value *v, const Shape &positions,
                       const llvm::DenseSet<unsigned> &bufs) const {
  if (!dependsOn(v, bufs))
    return true;
  if (!leadingDimsAre(v, positions))
    return false;
  // In a buffer of the group (or a reshape aliasing one, leading dims
  // alike, so row-major rows alike): its own rows.
  if (S.bufferOf.count(v))
    return true;
  return rowLocalOp(*v->getDefiningOp(), positions, bufs);
}

/// Does `op`'s element at index (pos, ...) read the group's buffers at
/// the rows of `pos` only? Elementwise ops whose operands have its rank,
/// views and slices that keep the leading dims, and gathers along a later
/// axis; anything else that reads the group's buffers is not row-local.
bool Planner::rowLocalOp(const Operation &op, const Shape &positions,
                         const llvm::DenseSet<unsigned> &bufs) const {
  int64_t p = positions.size(), rank = op.getResult()->getType().rank();
  auto operandsLocal = [&] {
    return llvm::all_of(op.getOperands(),
                        [&](const Value *o) { return rowLocal(o, positions, bufs); });
  };
  if (op.getInfo().has(Trait::Elementwise)) {
    for (const Value *o : op.getOperands())
      if ((int64_t)o->getType().rank() != rank && dependsOn(o, bufs))
        return false; // broadcast from the right: another position's rows
    return operandsLocal();
  }
  switch (op.getKind()) {
  case OpKind::Reshape:
    return operandsLocal();
  case OpKind::Slice:
    return axisOf(op, rank) >= p && operandsLocal();
  case OpKind::Gather: {
    const Value *src = op.getOperand(0), *ids = op.getOperand(1);
    if (dependsOn(src, bufs) && axisOf(op, src->getType().rank()) < p)
      return false;
    if (dependsOn(ids, bufs) && (int64_t)ids->getType().rank() < p)
      return false;
    return operandsLocal();
  }
  default:
    return false;
  }
}

/// One kernel for `ops` (two or more, consecutive, over the same
/// positions): a loop over the positions running each op's row body in
/// turn, so a position's rows are written and read back while in L1 and
/// the group costs one hand-out to the threads.
void Planner::emitRowGroup(llvm::ArrayRef<const Operation *> ops) {
  std::vector<unsigned> writes;
  for (const Operation *op : ops)
    writes.push_back(S.bufferOf.lookup(op->getResult()));
  steps.addRowGroup(ops, writes, [&](KernelEmitter &E) {
    std::vector<RowBody> bodies;
    for (const Operation *op : ops) {
      if (loweringOf(op->getKind()).kernel) {
        bodies.push_back(rowBodyOf(E, *op));
        continue;
      }
      const Value *v = op->getResult();
      bodies.push_back(storeRowBody(E, v, [&E, v](llvm::ArrayRef<llvm::Value *> idx) {
        return E.emitCompute(v, idx);
      }));
    }
    return emitRowKernel(E, bodies);
  });
}

/// Steps in body order. Neighbouring values filled by loops of row bodies
/// over the same positions (routing: the router's softmax, topk, the
/// weights' gather and their sum) form a *row group*, one kernel, when
/// each reads the earlier ones' buffers at its own position's rows only
/// (rowLocal): then running the bodies position by position computes what
/// the kernels one after another did, and no position waits for another.
void Planner::emit() {
  std::vector<const Operation *> ops; // those whose buffer is filled here
  for (const Operation &op : f.getBody()) {
    if (op.is(OpKind::Return))
      continue;
    auto it = S.bufferOf.find(op.getResult());
    if (it != S.bufferOf.end() && S.buffers[it->second].value == op.getResult())
      ops.push_back(&op); // not an alias
  }
  for (size_t i = 0; i < ops.size();) {
    size_t j = i + 1;
    if (std::optional<Shape> positions = positionsOf(*ops[i])) {
      llvm::DenseSet<unsigned> group{S.bufferOf.lookup(ops[i]->getResult())};
      for (; j < ops.size(); ++j) {
        const Operation &op = *ops[j];
        std::optional<Shape> pj = positionsOf(op);
        if (!pj || *pj != *positions)
          break;
        bool own = loweringOf(op.getKind()).kernel != nullptr;
        auto local = [&](const Value *o) { return rowLocal(o, *positions, group); };
        if (own ? !llvm::all_of(op.getOperands(), local) : !rowLocalOp(op, *positions, group))
          break;
        group.insert(S.bufferOf.lookup(op.getResult()));
      }
    }
    if (j - i >= 2)
      emitRowGroup(llvm::ArrayRef<const Operation *>(ops).slice(i, j - i));
    else
      emitOne(*ops[i], S.bufferOf.lookup(ops[i]->getResult()));
    i = j;
  }
}

llvm::Expected<Program> codegen::lowerFunction(const Function &f, const LowerOptions &opts) {
  Program p;
  if (!opts.into) {
    p.context = std::make_unique<llvm::LLVMContext>();
    p.module = std::make_unique<llvm::Module>(opts.prefix + "." + f.getName(), *p.context);
  }
  LowerState S{f, opts.into ? *opts.into : *p.module, llvm::DenseMap<const Value *, unsigned>(), p.buffers,
               llvm::StringMap<unsigned>(), p.errorSites, llvm::DenseMap<const Value *, unsigned>(),
               llvm::DenseMap<std::pair<const Value *, int64_t>, unsigned>(),
               llvm::DenseMap<unsigned, unsigned>(),
               llvm::DenseMap<std::pair<unsigned, unsigned>, unsigned>(),
               llvm::DenseMap<unsigned, unsigned>(), Target{}};
  for (auto &s : f.symbols()) {
    S.symbolIndex[s.name] = p.symbols.size();
    p.symbols.push_back(s.name);
  }
  if (opts.target) {
    S.target = *opts.target;
  } else {
    auto host = Target::host();
    if (!host)
      return host.takeError();
    S.target = *host;
  }
  StepBuilder steps(S, p.steps, opts.prefix);
  Planner planner{f, S, steps, {}, {}};
  if (auto e = planner.plan())
    return e;
  planner.emit();
  Operation *ret = f.getReturn();
  if (!ret)
    return err("@{} has no return", f.getName());
  for (const Value *v : ret->getOperands())
    p.results.push_back(S.bufferOf.lookup(v));
  return p;
}

Program codegen::copyProgram(const Program &p, const Function &from, const Function &to) {
  llvm::DenseMap<const Value *, const Value *> values;
  llvm::DenseMap<const Operation *, const Operation *> ops;
  for (unsigned i = 0; i < from.getNumArguments(); ++i)
    values[from.getArgument(i)] = to.getArgument(i);
  for (auto a = from.getBody().begin(), b = to.getBody().begin();
       a != from.getBody().end() && b != to.getBody().end(); ++a, ++b) {
    ops[&*a] = &*b;
    for (unsigned r = 0; r < a->getNumResults() && r < b->getNumResults(); ++r)
      values[a->getResult(r)] = b->getResult(r);
  }
  Program q;
  q.buffers = p.buffers;
  for (BufferDesc &b : q.buffers)
    if (b.value)
      b.value = values.lookup(b.value);
  q.steps = p.steps;
  for (Step &s : q.steps)
    if (s.op)
      s.op = ops.lookup(s.op);
  q.results = p.results;
  q.symbols = p.symbols;
  q.errorSites = p.errorSites;
  for (ErrorSite &e : q.errorSites)
    e.op = ops.lookup(e.op);
  return q;
}

std::string codegen::codegenKey(const Function &f) {
  std::unique_ptr<Function> c = f.clone();
  c->setName("");
  for (Value *a : c->getArguments())
    a->argAttrs().erase("gguf");
  std::string text;
  llvm::raw_string_ostream os(text);
  printFunction(*c, os);
  return text;
}

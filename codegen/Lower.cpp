//===- Lower.cpp - Planning: which values get buffers, which kernels ------===//
//
// Lowers a function in three steps:
//   1. Buffers. Arguments have one. A value gets one when an op must read it
//      from memory (matmul/matmul_id operands), when it is re-read many
//      times per element (softmax, sorts, norms) and not a cheap view, when
//      it is used twice and not cheap, when it is returned, and always for
//      the ops with kernels of their own (matmul, matmul_id, reductions,
//      sorts, norms, all_reduce). A reshape of a value with a buffer shares
//      that buffer (row-major order is unchanged): no kernel, no copy.
//      Every other value (elementwise chains, views, gathers, add_id,
//      concat, constants) is fused: computed inside its consumers' loops.
//   2. Kernels, in body order, one per materialised value (a matmul_id also
//      gets the routing kernel of its ids, shared by every matmul_id that
//      routes by the same ids).
//   3. The steps' read and write sets, for the runtime's memory plan.
//
//===----------------------------------------------------------------------===//
#include "codegen/Kernels.h"
#include "ir/Error.h"

#include "llvm/ADT/SmallPtrSet.h"

#include "fmt/format.h"

using namespace moe;
using namespace moe::codegen;


/// Ops that always get a kernel (and so a buffer) of their own.
static bool hasOwnKernel(OpKind k) {
  switch (k) {
  case OpKind::Matmul: case OpKind::MatmulId: case OpKind::ReduceSum:
  case OpKind::ReduceMean: case OpKind::ReduceMax: case OpKind::Softmax:
  case OpKind::Argsort: case OpKind::Topk: case OpKind::RmsNorm:
  case OpKind::LayerNorm: case OpKind::AllReduce:
    return true;
  default:
    return false;
  }
}

/// Does `user` need operand `i` in memory (or re-read it so often that it
/// should be)?
static bool needsOperandInMemory(const Operation &user, unsigned i) {
  switch (user.getKind()) {
  case OpKind::Matmul: return true;
  case OpKind::MatmulId: return i < 2;
  case OpKind::Softmax: case OpKind::Argsort: case OpKind::Topk:
  case OpKind::RmsNorm: case OpKind::LayerNorm:
    return i == 0;
  default:
    return false;
  }
}

static bool isView(OpKind k) {
  return k == OpKind::Reshape || k == OpKind::Permute || k == OpKind::Slice ||
         k == OpKind::Broadcast || k == OpKind::View;
}

namespace {
struct Planner {
  const Function &f;
  LowerState &S;
  std::vector<Step> &steps;
  llvm::SmallPtrSet<const Value *, 16> returned;
  /// Values whose elements are cheap to recompute (a constant, or views down
  /// to a buffer or a constant).
  llvm::SmallPtrSet<const Value *, 16> cheap;
  llvm::DenseMap<const Value *, unsigned> routeOf;

  unsigned addBuffer(BufferDesc d) {
    S.buffers.push_back(std::move(d));
    return S.buffers.size() - 1;
  }

  bool wantsBuffer(const Value *v) {
    const Operation &op = *v->getDefiningOp();
    if (returned.count(v) || hasOwnKernel(op.getKind()))
      return true;
    bool isCheap = op.is(OpKind::Constant) ||
                   (isView(op.getKind()) && (S.bufferOf.count(op.getOperand(0)) ||
                                             cheap.count(op.getOperand(0))));
    for (auto &u : v->getUses())
      if (needsOperandInMemory(*u.user, u.index) &&
          (!isCheap || u.user->is(OpKind::Matmul) || u.user->is(OpKind::MatmulId)))
        return true;
    if (isCheap) {
      cheap.insert(v);
      return false;
    }
    return v->getUses().size() > 1;
  }

  /// Buffers read by the expression of `v` (through fused values).
  void collectReads(const Value *v, std::vector<unsigned> &out) {
    auto it = S.bufferOf.find(v);
    if (it != S.bufferOf.end()) {
      out.push_back(it->second);
      return;
    }
    for (const Value *o : v->getDefiningOp()->getOperands())
      collectReads(o, out);
  }

  llvm::Error plan();
  llvm::Error emit();
  void addStep(const Operation &op, const std::string &name, const Extent &x,
               std::vector<unsigned> writes) {
    Step s;
    s.symbol = name;
    s.op = &op;
    s.extent = x.factors;
    s.grain = x.grain;
    s.writes = std::move(writes);
    for (const Value *o : op.getOperands())
      collectReads(o, s.reads);
    steps.push_back(std::move(s));
  }
};
} // namespace

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
    S.bufferOf[a] = addBuffer(std::move(d));
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
    if (op.is(OpKind::AllReduce) && ty.elem != ElemType::F32)
      return err("{}: all_reduce of {} is not supported (f32 only)", op.getLabel(),
                 elemTypeName(ty.elem).str());
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
    S.bufferOf[v] = addBuffer(std::move(d));
  }
  return llvm::Error::success();
}

llvm::Error Planner::emit() {
  for (const Operation &op : f.getBody()) {
    if (op.is(OpKind::Return))
      continue;
    const Value *v = op.getResult();
    auto it = S.bufferOf.find(v);
    if (it == S.bufferOf.end())
      continue;
    unsigned buf = it->second;
    if (S.buffers[buf].value != v)
      continue; // an alias: nothing to compute
    std::string name = fmt::format("moe_k{}_{}_{}", steps.size(), op.getName().str(), v->getName());
    for (char &c : name)
      if (!isalnum((unsigned char)c) && c != '_')
        c = '_';
    switch (op.getKind()) {
    case OpKind::Matmul: {
      KernelEmitter E(S, name);
      addStep(op, name, emitMatmulKernel(E, op), {buf});
      break;
    }
    case OpKind::MatmulId: {
      const Value *ids = op.getOperand(2);
      auto r = routeOf.find(ids);
      unsigned route;
      if (r == routeOf.end()) {
        BufferDesc d;
        d.kind = BufferKind::Scratch;
        d.scratchBytes = routeScratchBytes(op);
        d.name = "route(%" + ids->getName() + ")";
        route = addBuffer(std::move(d));
        routeOf[ids] = route;
        std::string rname = name + "_route";
        KernelEmitter E(S, rname);
        addStep(op, rname, emitRouteKernel(E, op, route), {route});
      } else {
        route = r->second;
      }
      KernelEmitter E(S, name);
      addStep(op, name, emitMatmulIdKernel(E, op, route), {buf});
      steps.back().reads.push_back(route);
      break;
    }
    case OpKind::ReduceSum: case OpKind::ReduceMean: case OpKind::ReduceMax: {
      KernelEmitter E(S, name);
      addStep(op, name, emitReduceKernel(E, op), {buf});
      break;
    }
    case OpKind::Softmax: {
      KernelEmitter E(S, name);
      addStep(op, name, emitSoftmaxKernel(E, op), {buf});
      break;
    }
    case OpKind::RmsNorm: case OpKind::LayerNorm: {
      KernelEmitter E(S, name);
      addStep(op, name, emitNormKernel(E, op), {buf});
      break;
    }
    case OpKind::Argsort: case OpKind::Topk: {
      KernelEmitter E(S, name);
      addStep(op, name, emitSortKernel(E, op), {buf});
      break;
    }
    case OpKind::AllReduce: {
      KernelEmitter E(S, name);
      const Value *src = op.getOperand(0);
      addStep(op, name, emitStoreKernel(E, v, [&](llvm::ArrayRef<llvm::Value *> idx) {
        return E.emitValue(src, idx);
      }), {buf});
      Step s;
      s.kind = StepKind::AllReduce;
      s.op = &op;
      s.buffer = buf;
      s.reads = s.writes = {buf};
      steps.push_back(std::move(s));
      break;
    }
    default: {
      KernelEmitter E(S, name);
      addStep(op, name, emitStoreKernel(E, v, [&](llvm::ArrayRef<llvm::Value *> idx) {
        return E.emitCompute(v, idx);
      }), {buf});
      break;
    }
    }
  }
  return llvm::Error::success();
}

llvm::Expected<Program> codegen::lowerFunction(const Function &f, const LowerOptions &opts) {
  Program p;
  p.context = std::make_unique<llvm::LLVMContext>();
  p.module = std::make_unique<llvm::Module>(opts.prefix + "." + f.getName(), *p.context);
  LowerState S{f, *p.module, llvm::DenseMap<const Value *, unsigned>(), p.buffers,
               llvm::StringMap<unsigned>(), p.errorSites};
  for (auto &s : f.symbols()) {
    S.symbolIndex[s.name] = p.symbols.size();
    p.symbols.push_back(s.name);
  }
  Planner planner{f, S, p.steps, llvm::SmallPtrSet<const Value *, 16>(),
                  llvm::SmallPtrSet<const Value *, 16>(), llvm::DenseMap<const Value *, unsigned>()};
  if (auto e = planner.plan())
    return e;
  if (auto e = planner.emit())
    return e;
  Operation *ret = f.getReturn();
  if (!ret)
    return err("@{} has no return", f.getName());
  for (const Value *v : ret->getOperands())
    p.results.push_back(S.bufferOf.lookup(v));
  return p;
}

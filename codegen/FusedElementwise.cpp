//===- FusedElementwise.cpp - Elementwise ops, GLUs, casts, constants -----===//
//
// The fused lowerings of the computing ops (Lowering.h): element `idx` of
// the result from the same element of its (broadcast) operands, with
// ir/Scalar.h's semantics operation for operation, so the JIT and the
// interpreter agree. A computed f16/bf16 value is rounded to its type,
// exactly as the interpreter rounds every op result.
//
// Transcendentals call libm (expf, tanhf, ...) as the interpreter's std::
// functions do, except in the activations of the expert FFNs: silu, tanh
// gelu and the GLUs (swiglu, geglu, swiglu_oai's sigmoid) use the inline
// exp of FastMath.h (at most 1 ulp from std::exp, measured), so their loops
// vectorise; those results differ from the interpreter's by a few ulp. exp,
// a standalone sigmoid and softmax stay on libm: they may feed routing.
//
//===----------------------------------------------------------------------===//
#include "codegen/FastMath.h"
#include "codegen/Lowering.h"

#include "llvm/IR/Intrinsics.h"

using namespace moe;
using namespace moe::codegen;
using llvm::ArrayRef;

//===----------------------------------------------------------------------===//
// Scalar math (ir/Scalar.h, operation for operation)
//===----------------------------------------------------------------------===//

llvm::Value *KernelEmitter::intrinsic(llvm::Intrinsic::ID id, ArrayRef<llvm::Value *> args) {
  return B.CreateIntrinsic(id, {args[0]->getType()}, args);
}

llvm::Value *KernelEmitter::callF32(llvm::StringRef name, llvm::Value *x) {
  auto callee = S.module.getOrInsertFunction(
      name, llvm::FunctionType::get(f32(), {f32()}, false));
  if (auto *F = llvm::dyn_cast<llvm::Function>(callee.getCallee())) {
    F->setDoesNotThrow();
    F->setDoesNotAccessMemory();
  }
  return B.CreateCall(callee, {x});
}

/// std::max(a, b) = a < b ? b : a; std::min(a, b) = b < a ? b : a.
static llvm::Value *stdMax(llvm::IRBuilder<> &B, llvm::Value *a, llvm::Value *b) {
  return B.CreateSelect(B.CreateFCmpOLT(a, b), b, a);
}
static llvm::Value *stdMin(llvm::IRBuilder<> &B, llvm::Value *a, llvm::Value *b) {
  return B.CreateSelect(B.CreateFCmpOLT(b, a), b, a);
}

llvm::Value *KernelEmitter::unary(OpKind k, const scalar::Params &p, llvm::Value *x) {
  auto one = cf(1.0f);
  auto expNeg = [&](llvm::Value *v) { return callF32("expf", B.CreateFNeg(v)); };
  switch (k) {
  case OpKind::Neg: return B.CreateFNeg(x);
  case OpKind::Exp: return callF32("expf", x);
  case OpKind::Log: return callF32("logf", x);
  case OpKind::Sqr: return B.CreateFMul(x, x);
  case OpKind::Sqrt: return intrinsic(llvm::Intrinsic::sqrt, {x});
  case OpKind::Rsqrt: return B.CreateFDiv(one, intrinsic(llvm::Intrinsic::sqrt, {x}));
  case OpKind::Abs: return intrinsic(llvm::Intrinsic::fabs, {x});
  case OpKind::Tanh: return callF32("tanhf", x);
  case OpKind::Sigmoid: return B.CreateFDiv(one, B.CreateFAdd(one, expNeg(x)));
  case OpKind::Softplus:
    return B.CreateSelect(B.CreateFCmpOGT(x, cf(20.0f)), x,
                          callF32("log1pf", callF32("expf", x)));
  case OpKind::Relu: return B.CreateSelect(B.CreateFCmpOGT(x, cf(0.0f)), x, cf(0.0f));
  case OpKind::Silu: // x / (1 + e^-x), the inline exp
    return B.CreateFDiv(x, B.CreateFAdd(one, emitExpF32(B, B.CreateFNeg(x))));
  case OpKind::Gelu: {
    // 0.5 * x * (1 + tanh(u)), u = c * x * (1 + 0.044715 * x * x), computed
    // as the equal x / (1 + e^(-2u)) on the inline exp: no cancellation in
    // 1 + tanh(u) for negative u, +-inf and NaN as before.
    llvm::Value *cx = B.CreateFMul(cf(0.7978845608028654f), x);
    llvm::Value *inner =
        B.CreateFMul(cx, B.CreateFAdd(one, B.CreateFMul(B.CreateFMul(cf(0.044715f), x), x)));
    return B.CreateFDiv(x, B.CreateFAdd(one, emitExpF32(B, B.CreateFMul(inner, cf(-2.0f)))));
  }
  case OpKind::GeluErf: {
    llvm::Value *half = B.CreateFMul(cf(0.5f), x);
    return B.CreateFMul(half,
                        B.CreateFAdd(one, callF32("erff", B.CreateFMul(x, cf(0.7071067811865476f)))));
  }
  case OpKind::Pow: {
    if (p.exponent == 2.0f)
      return B.CreateFMul(x, x);
    auto callee = S.module.getOrInsertFunction(
        "powf", llvm::FunctionType::get(f32(), {f32(), f32()}, false));
    return B.CreateCall(callee, {x, cf(p.exponent)});
  }
  case OpKind::Scale: return B.CreateFAdd(B.CreateFMul(x, cf(p.factor)), cf(p.bias));
  case OpKind::Clamp: return stdMin(B, stdMax(B, x, cf(p.lo)), cf(p.hi));
  default: llvm_unreachable("not a unary op");
  }
}

llvm::Value *KernelEmitter::binary(OpKind k, llvm::Value *a, llvm::Value *b) {
  if (a->getType()->isIntegerTy()) { // i32: wrapping, truncating division
    switch (k) {
    case OpKind::Add: return B.CreateAdd(a, b);
    case OpKind::Sub: return B.CreateSub(a, b);
    case OpKind::Mul: return B.CreateMul(a, b);
    case OpKind::Div: {
      // INT_MIN / -1 wraps to INT_MIN (sdiv would be undefined); the caller
      // has checked b != 0.
      llvm::Value *m1 = B.CreateICmpEQ(b, B.getInt32(-1));
      llvm::Value *neg = B.CreateSub(B.getInt32(0), a);
      return B.CreateSelect(m1, neg, B.CreateSDiv(a, B.CreateSelect(m1, B.getInt32(1), b)));
    }
    case OpKind::Max: return B.CreateSelect(B.CreateICmpSLT(a, b), b, a);
    case OpKind::Min: return B.CreateSelect(B.CreateICmpSLT(b, a), b, a);
    default: llvm_unreachable("not a binary op");
    }
  }
  switch (k) {
  case OpKind::Add: return B.CreateFAdd(a, b);
  case OpKind::Sub: return B.CreateFSub(a, b);
  case OpKind::Mul: return B.CreateFMul(a, b);
  case OpKind::Div: return B.CreateFDiv(a, b);
  case OpKind::Max: return stdMax(B, a, b);
  case OpKind::Min: return stdMin(B, a, b);
  default: llvm_unreachable("not a binary op");
  }
}

llvm::Value *KernelEmitter::glu(OpKind k, const scalar::Params &p, llvm::Value *g,
                                llvm::Value *u) {
  switch (k) {
  case OpKind::Swiglu: return B.CreateFMul(unary(OpKind::Silu, p, g), u);
  case OpKind::Geglu: return B.CreateFMul(unary(OpKind::Gelu, p, g), u);
  case OpKind::SwigluOai: {
    llvm::Value *gc = stdMin(B, g, cf(p.limit));
    llvm::Value *uc = stdMin(B, stdMax(B, u, cf(-p.limit)), cf(p.limit));
    // sigmoid(alpha * gc) on the inline exp (a standalone sigmoid keeps
    // libm's expf: it may feed routing).
    llvm::Value *ag = B.CreateFMul(cf(p.alpha), gc);
    llvm::Value *sg =
        B.CreateFDiv(cf(1.0f), B.CreateFAdd(cf(1.0f), emitExpF32(B, B.CreateFNeg(ag))));
    llvm::Value *gs = B.CreateFMul(gc, sg);
    return B.CreateFMul(gs, B.CreateFAdd(uc, cf(1.0f)));
  }
  default: llvm_unreachable("not a GLU");
  }
}

//===----------------------------------------------------------------------===//
// The lowerings
//===----------------------------------------------------------------------===//

/// A computed result stored as its type would store it.
static llvm::Value *rounded(KernelEmitter &E, const Value *v, llvm::Value *r) {
  ElemType elem = v->getType().elem;
  return elem == ElemType::I32 ? r : E.roundTo(elem, r);
}

llvm::Value *codegen::exprBinary(KernelEmitter &E, const Value *v, ArrayRef<llvm::Value *> idx) {
  const Operation &op = *v->getDefiningOp();
  const TensorType &ty = v->getType();
  llvm::Value *a = E.broadcastOperand(op.getOperand(0), ty, idx);
  llvm::Value *b = E.broadcastOperand(op.getOperand(1), ty, idx);
  if (op.is(OpKind::Div) && ty.elem == ElemType::I32) {
    llvm::Value *nonzero = E.B.CreateICmpNE(b, E.B.getInt32(0));
    llvm::Value *at = E.linearize(idx, ty.dims);
    E.failUnless(E.S.errorSite(ErrorSite::Kind::DivByZero, op), nonzero, at, E.c64(0), E.c64(0));
  }
  return rounded(E, v, E.binary(op.getKind(), a, b));
}

llvm::Value *codegen::exprUnary(KernelEmitter &E, const Value *v, ArrayRef<llvm::Value *> idx) {
  const Operation &op = *v->getDefiningOp();
  scalar::Params p = scalar::readParams(op.getInfo(), op.attrs());
  return rounded(E, v, E.unary(op.getKind(), p, E.emitValue(op.getOperand(0), idx)));
}

llvm::Value *codegen::exprGlu(KernelEmitter &E, const Value *v, ArrayRef<llvm::Value *> idx) {
  const Operation &op = *v->getDefiningOp();
  scalar::Params p = scalar::readParams(op.getInfo(), op.attrs());
  llvm::Value *g = E.emitValue(op.getOperand(0), idx);
  llvm::Value *u = E.emitValue(op.getOperand(1), idx);
  return rounded(E, v, E.glu(op.getKind(), p, g, u));
}

llvm::Value *codegen::exprCast(KernelEmitter &E, const Value *v, ArrayRef<llvm::Value *> idx) {
  const Value *x = v->getDefiningOp()->getOperand(0);
  llvm::Value *xv = E.emitValue(x, idx);
  bool fromInt = x->getType().elem == ElemType::I32;
  llvm::Value *r;
  if (v->getType().elem == ElemType::I32)
    r = fromInt ? xv : E.B.CreateIntrinsic(llvm::Intrinsic::fptosi_sat, {E.i32(), E.f32()}, {xv});
  else
    r = fromInt ? E.B.CreateSIToFP(xv, E.f32()) : xv;
  return rounded(E, v, r);
}

/// A dense constant list as a private global of f32 or i32.
static llvm::GlobalVariable *constantTable(KernelEmitter &E, const Operation &op,
                                           ElemType elem) {
  auto &list = op.getAttr("value")->getList();
  std::vector<llvm::Constant *> vals;
  for (auto &a : list) {
    if (elem == ElemType::I32)
      vals.push_back(llvm::ConstantInt::get(
          E.i32(), a.isInt() ? std::clamp<int64_t>(a.getInt(), INT32_MIN, INT32_MAX)
                             : (int64_t)a.getNumber()));
    else
      vals.push_back(llvm::ConstantFP::get(E.f32(), (float)a.getNumber()));
  }
  auto *ty = llvm::ArrayType::get(elem == ElemType::I32 ? E.i32() : E.f32(), vals.size());
  return new llvm::GlobalVariable(E.S.module, ty, true, llvm::GlobalValue::PrivateLinkage,
                                  llvm::ConstantArray::get(ty, vals), "moe.const");
}

llvm::Value *codegen::exprConstant(KernelEmitter &E, const Value *v,
                                   ArrayRef<llvm::Value *> idx) {
  const Operation &op = *v->getDefiningOp();
  const TensorType &ty = v->getType();
  const Attribute *a = op.getAttr("value");
  llvm::Value *r;
  if (a->isList()) {
    auto *g = constantTable(E, op, ty.elem);
    llvm::Type *et = ty.elem == ElemType::I32 ? E.i32() : E.f32();
    r = E.B.CreateLoad(et, E.B.CreateGEP(g->getValueType(), g,
                                         {E.c64(0), E.linearize(idx, ty.dims)}));
  } else if (ty.elem == ElemType::I32) {
    double d = a->getNumber();
    int64_t iv = a->isInt() ? std::clamp<int64_t>(a->getInt(), INT32_MIN, INT32_MAX)
                            : (std::isnan(d) ? 0
                                             : (int64_t)std::clamp(d, -2147483648.0, 2147483647.0));
    r = E.B.getInt32((int32_t)iv);
  } else {
    r = E.cf((float)a->getNumber());
  }
  return rounded(E, v, r);
}

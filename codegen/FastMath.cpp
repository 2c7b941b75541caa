//===- FastMath.cpp - Inline, vectorisable exp for the activations --------===//
//
// See FastMath.h for the algorithm and its accuracy.
//
//===----------------------------------------------------------------------===//
#include "codegen/FastMath.h"

using namespace moe;

llvm::Value *codegen::emitExpF32(llvm::IRBuilderBase &B, llvm::Value *x) {
  llvm::Type *ft = x->getType();
  llvm::Type *it = B.getInt32Ty();
  if (auto *vt = llvm::dyn_cast<llvm::VectorType>(ft))
    it = llvm::VectorType::get(it, vt->getElementCount());
  auto cf = [&](float v) { return llvm::ConstantFP::get(ft, v); };
  auto ci = [&](int32_t v) { return llvm::ConstantInt::get(it, v, true); };

  // Past the clamp e^x is +inf or 0 anyway; NaN compares false and passes.
  llvm::Value *xc = B.CreateSelect(B.CreateFCmpOLT(x, cf(-104.0f)), cf(-104.0f), x);
  xc = B.CreateSelect(B.CreateFCmpOGT(xc, cf(89.0f)), cf(89.0f), xc);

  // n = round(x * log2(e)): adding 1.5 * 2^23 leaves n in the low mantissa
  // bits (|n| <= 151 < 2^22).
  const float shifter = 12582912.0f; // 0x4B400000
  llvm::Value *t = B.CreateFAdd(B.CreateFMul(xc, cf(1.44269504088896341f)), cf(shifter));
  llvm::Value *n = B.CreateFSub(t, cf(shifter));
  llvm::Value *ni = B.CreateSub(B.CreateBitCast(t, it), ci(0x4B400000));

  // r = x - n ln2, ln2 = C1 + C2 (Cody-Waite).
  llvm::Value *r = B.CreateFSub(xc, B.CreateFMul(n, cf(0.693359375f)));
  r = B.CreateFSub(r, B.CreateFMul(n, cf(-2.12194440e-4f)));

  // e^r = 1 + r + r^2 P(r) (Cephes expf).
  const float P[] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                     4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
  llvm::Value *p = cf(P[0]);
  for (int k = 1; k < 6; ++k)
    p = B.CreateFAdd(B.CreateFMul(p, r), cf(P[k]));
  llvm::Value *y = B.CreateFAdd(B.CreateFAdd(B.CreateFMul(p, B.CreateFMul(r, r)), r), cf(1.0f));

  // y * 2^n as y * 2^n1 * 2^n2, n1 = n >> 1, n2 = n - n1: both scales are
  // normal floats for n in [-151, 129], and y * 2^n1 is exact.
  llvm::Value *n1 = B.CreateAShr(ni, ci(1));
  llvm::Value *n2 = B.CreateSub(ni, n1);
  auto pow2 = [&](llvm::Value *e) {
    return B.CreateBitCast(B.CreateShl(B.CreateAdd(e, ci(127)), ci(23)), ft);
  };
  llvm::Value *y1 = B.CreateFMul(y, pow2(n1));
  return B.CreateFMul(y1, pow2(n2));
}

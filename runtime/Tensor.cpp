//===- Tensor.cpp - Concrete tensors of the reference interpreter ---------===//
#include "runtime/Tensor.h"
#include "ir/Error.h"
#include "runtime/Formats.h"
#include "runtime/Npy.h"

#include "fmt/format.h"

#include <cmath>
#include <cstring>
#include <unistd.h>
#include <limits>

using namespace moe;

std::string moe::formatShape(llvm::ArrayRef<int64_t> shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

llvm::Error moe::checkShape(ElemType elem, llvm::ArrayRef<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0)
      return err("shape {} has a negative dim", formatShape(shape));
    if (__builtin_mul_overflow(n, d, &n))
      return err("shape {} has too many elements", formatShape(shape));
  }
  // Storage in bytes must fit too (4 bytes per element at most).
  if (n > std::numeric_limits<int64_t>::max() / 4)
    return err("shape {} has too many elements", formatShape(shape));
  if (isQuantized(elem)) {
    if (shape.empty())
      return err("a {} tensor needs rank >= 1 (blocks along the innermost axis)",
                 elemTypeName(elem).str());
    if (shape.back() % blockElems(elem) != 0)
      return err("the innermost dim of a {} tensor must be a multiple of {}, got shape {}",
                 elemTypeName(elem).str(), blockElems(elem), formatShape(shape));
  }
  return llvm::Error::success();
}

float moe::roundToElem(ElemType elem, float v) {
  switch (elem) {
  case ElemType::F16:
    return f16ToF32(f32ToF16(v));
  case ElemType::BF16:
    return bf16ToF32(f32ToBF16(v));
  default:
    return v;
  }
}

llvm::Expected<int64_t> moe::evaluateDim(const DimExpr &d, const SymbolBindings &syms) {
  int64_t total = 0;
  for (auto &[mono, coef] : d.getTerms()) {
    int64_t v = coef;
    for (auto &[sym, pow] : mono) {
      auto it = syms.find(sym);
      if (it == syms.end())
        return err("symbol {} is not bound", sym);
      for (unsigned k = 0; k < pow; ++k)
        if (__builtin_mul_overflow(v, it->second, &v))
          return err("dim {} overflows int64", d.str());
    }
    if (__builtin_add_overflow(total, v, &total))
      return err("dim {} overflows int64", d.str());
  }
  return total;
}

uint64_t moe::physicalMemoryBytes() {
  static const uint64_t bytes = [] {
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && size > 0 ? uint64_t(pages) * uint64_t(size) : uint64_t(1) << 40;
  }();
  return bytes;
}

llvm::Expected<std::vector<int64_t>> moe::evaluateShape(const TensorType &t,
                                                         const SymbolBindings &syms) {
  std::vector<int64_t> r;
  for (auto &d : t.dims) {
    auto v = evaluateDim(d, syms);
    if (!v)
      return v.takeError();
    if (*v < 0)
      return err("dim {} of {} is {} (negative)", d.str(), t.str(), *v);
    r.push_back(*v);
  }
  // Every buffer the runtime allocates has an evaluated shape: refusing one
  // that cannot fit in this machine's memory here turns a would-be abort in
  // the allocator into an error before anything is allocated.
  int64_t n = 1;
  for (int64_t d : r)
    if (__builtin_mul_overflow(n, d, &n))
      return err("{} has more elements than 64-bit sizes can count", t.str());
  int64_t blocks = n / blockElems(t.elem) + (n % blockElems(t.elem) != 0), bytes = 0;
  if (__builtin_mul_overflow(blocks, blockBytes(t.elem), &bytes))
    return err("{} is {}, more bytes than 64-bit sizes can count", t.str(), formatShape(r));
  if (uint64_t(bytes) > physicalMemoryBytes())
    return err("{} is {} ({} bytes), more than this machine's memory ({} bytes)", t.str(),
               formatShape(r), bytes, physicalMemoryBytes());
  return r;
}

int64_t Tensor::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

int64_t Tensor::numRows() const {
  int64_t len = rowLength();
  return len == 0 ? 0 : numElements() / len;
}

std::vector<int64_t> Tensor::strides() const { return rowMajorStrides(shape); }

std::string Tensor::shapeStr() const { return formatShape(shape); }

Tensor Tensor::zeros(ElemType elem, llvm::ArrayRef<int64_t> shape) {
  Tensor t;
  t.elem = elem;
  t.shape = shape.vec();
  int64_t n = t.numElements();
  if (elem == ElemType::I32)
    t.i.assign(n, 0);
  else if (isQuantized(elem))
    t.raw.assign(t.numRows() * rowBytes(elem, t.rowLength()), 0);
  else
    t.f.assign(n, 0.0f);
  return t;
}

llvm::Expected<Tensor> Tensor::fromF32(ElemType elem, llvm::ArrayRef<int64_t> shape,
                                       llvm::ArrayRef<float> values) {
  if (auto e = checkShape(elem, shape))
    return e;
  Tensor t = zeros(elem, shape);
  if ((int64_t)values.size() != t.numElements())
    return err("{} values for a {} tensor of shape {} ({} elements)", values.size(),
               elemTypeName(elem).str(), formatShape(shape), t.numElements());
  if (elem == ElemType::I32) {
    quantizeRow(ElemType::I32, values.data(), t.i.data(), values.size());
  } else if (isQuantized(elem)) {
    int64_t len = t.rowLength(), rb = rowBytes(elem, len);
    for (int64_t r = 0; r < t.numRows(); ++r)
      quantizeRow(elem, values.data() + r * len, t.raw.data() + r * rb, len);
  } else {
    t.f.assign(values.begin(), values.end());
    t.roundToElemType();
  }
  return t;
}

llvm::Expected<Tensor> Tensor::fromI32(llvm::ArrayRef<int64_t> shape,
                                       llvm::ArrayRef<int32_t> values) {
  if (auto e = checkShape(ElemType::I32, shape))
    return e;
  Tensor t = zeros(ElemType::I32, shape);
  if ((int64_t)values.size() != t.numElements())
    return err("{} values for an i32 tensor of shape {} ({} elements)", values.size(),
               formatShape(shape), t.numElements());
  t.i.assign(values.begin(), values.end());
  return t;
}

void Tensor::readF32(int64_t first, int64_t count, float *dst) const {
  if (count <= 0)
    return;
  if (elem == ElemType::I32) {
    for (int64_t k = 0; k < count; ++k)
      dst[k] = (float)i[first + k];
    return;
  }
  if (!isQuantized(elem)) {
    std::memcpy(dst, f.data() + first, count * sizeof(float));
    return;
  }
  // Decode block by block; blocks never straddle rows (rows are whole blocks).
  const int64_t be = blockElems(elem), bb = blockBytes(elem);
  float block[64];
  for (int64_t b = first / be; b * be < first + count; ++b) {
    dequantizeRow(elem, raw.data() + b * bb, block, be);
    int64_t lo = std::max(first, b * be), hi = std::min(first + count, (b + 1) * be);
    for (int64_t k = lo; k < hi; ++k)
      dst[k - first] = block[k - b * be];
  }
}

void Tensor::dequantizeRows(int64_t firstRow, int64_t count, float *dst) const {
  int64_t len = rowLength();
  if (!isQuantized(elem)) {
    readF32(firstRow * len, count * len, dst);
    return;
  }
  int64_t rb = rowBytes(elem, len);
  for (int64_t r = 0; r < count; ++r)
    dequantizeRow(elem, raw.data() + (firstRow + r) * rb, dst + r * len, len);
}

std::vector<float> Tensor::toF32() const {
  std::vector<float> out(numElements());
  if (isQuantized(elem))
    dequantizeRows(0, numRows(), out.data());
  else
    readF32(0, numElements(), out.data());
  return out;
}

llvm::Error Tensor::validate() const {
  if (auto e = checkShape(elem, shape))
    return e;
  int64_t n = numElements();
  size_t wantF = 0, wantI = 0, wantRaw = 0;
  if (elem == ElemType::I32)
    wantI = n;
  else if (isQuantized(elem))
    wantRaw = numRows() * rowBytes(elem, rowLength());
  else
    wantF = n;
  if (f.size() != wantF || i.size() != wantI || raw.size() != wantRaw)
    return err("a {} tensor of shape {} needs {} floats, {} ints and {} bytes of blocks; "
               "it has {}, {} and {}",
               elemTypeName(elem).str(), shapeStr(), wantF, wantI, wantRaw, f.size(),
               i.size(), raw.size());
  if (elem == ElemType::F16 || elem == ElemType::BF16)
    for (size_t k = 0; k < f.size(); ++k) {
      float r = roundToElem(elem, f[k]);
      if (std::memcmp(&r, &f[k], 4) != 0 && !(std::isnan(r) && std::isnan(f[k])))
        return err("element {} of a {} tensor is {}, which is not representable in {}", k,
                   elemTypeName(elem).str(), f[k], elemTypeName(elem).str());
    }
  return llvm::Error::success();
}

void Tensor::roundToElemType() {
  if (elem != ElemType::F16 && elem != ElemType::BF16)
    return;
  for (float &v : f)
    v = roundToElem(elem, v);
}

uint64_t Tensor::checksum() const {
  uint64_t h = 0xcbf29ce484222325ull;
  for (float v : toF32()) {
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    for (int b = 0; b < 4; ++b) {
      h ^= (bits >> (8 * b)) & 0xff;
      h *= 0x100000001b3ull;
    }
  }
  return h;
}

std::string Tensor::summary() const {
  std::vector<float> v = toF32();
  double lo = NAN, hi = NAN, mean = NAN;
  if (!v.empty()) {
    // numpy's habits: a NaN anywhere makes min and max NaN.
    bool anyNaN = false;
    double sum = 0;
    lo = INFINITY, hi = -INFINITY;
    for (float x : v) {
      anyNaN |= std::isnan(x);
      lo = std::min(lo, (double)x);
      hi = std::max(hi, (double)x);
      sum += x;
    }
    if (anyNaN)
      lo = hi = NAN;
    mean = sum / (double)v.size();
  }
  return fmt::format("shape={} {} min={:.6g} max={:.6g} mean={:.6g} checksum=0x{:016x}",
                     shapeStr(), elemTypeName(elem).str(), lo, hi, mean, checksum());
}

llvm::Error Tensor::save(llvm::StringRef path) const {
  if (auto e = validate())
    return e;
  if (elem == ElemType::I32)
    return writeNpy(path, "<i4", shape, i.data(), i.size() * 4);
  if (elem == ElemType::F16) {
    std::vector<uint16_t> h(f.size());
    for (size_t k = 0; k < f.size(); ++k)
      h[k] = f32ToF16(f[k]);
    return writeNpy(path, "<f2", shape, h.data(), h.size() * 2);
  }
  std::vector<float> v = toF32();
  return writeNpy(path, "<f4", shape, v.data(), v.size() * 4);
}

llvm::Expected<Tensor> Tensor::fromNpy(const NpyArray &a, ElemType as) {
  if (as == ElemType::I32) {
    auto v = npyToI32(a);
    if (!v)
      return v.takeError();
    return fromI32(a.shape, *v);
  }
  if (a.descr != "<f2" && a.descr != "<f4" && a.descr != "<f8")
    return err("cannot bind {} data ({}) to a {} tensor", a.descr,
               formatShape(a.shape), elemTypeName(as).str());
  auto v = npyToF32(a);
  if (!v)
    return v.takeError();
  return fromF32(as, a.shape, *v);
}

llvm::Expected<Tensor> Tensor::load(llvm::StringRef path, ElemType as) {
  auto a = readNpy(path);
  if (!a)
    return a.takeError();
  auto t = fromNpy(*a, as);
  if (!t)
    return err("{}: {}", path.str(), llvm::toString(t.takeError()));
  return t;
}

llvm::Expected<Tensor> Tensor::load(llvm::StringRef path) {
  auto a = readNpy(path);
  if (!a)
    return a.takeError();
  ElemType as = a->descr == "<f2"                          ? ElemType::F16
                : a->descr == "<f4" || a->descr == "<f8" ? ElemType::F32
                                                           : ElemType::I32;
  auto t = fromNpy(*a, as);
  if (!t)
    return err("{}: {}", path.str(), llvm::toString(t.takeError()));
  return t;
}

std::string moe::formatIndex(int64_t flat, llvm::ArrayRef<int64_t> shape) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = shape[d] ? flat % shape[d] : 0;
    flat = shape[d] ? flat / shape[d] : 0;
  }
  return formatShape(idx);
}

std::vector<uint8_t> Tensor::storedBytes() const {
  int64_t n = numElements();
  std::vector<uint8_t> b(rowBytes(elem, n));
  switch (elem) {
  case ElemType::F32:
  case ElemType::F16:
  case ElemType::BF16:
    quantizeRow(elem, f.data(), b.data(), n); // f32 copied, f16/bf16 exact (representable)
    break;
  case ElemType::I32:
    if (n)
      std::memcpy(b.data(), i.data(), b.size());
    break;
  default:
    if (!b.empty())
      std::memcpy(b.data(), raw.data(), b.size());
  }
  return b;
}

Tensor Tensor::fromStored(ElemType elem, std::vector<int64_t> shape, const void *data) {
  Tensor t;
  t.elem = elem;
  t.shape = std::move(shape);
  int64_t n = t.numElements();
  switch (elem) {
  case ElemType::F32:
  case ElemType::F16:
  case ElemType::BF16:
    t.f.resize(n);
    dequantizeRow(elem, data, t.f.data(), n);
    break;
  case ElemType::I32:
    t.i.resize(n);
    if (n)
      std::memcpy(t.i.data(), data, n * 4);
    break;
  default:
    t.raw.resize(rowBytes(elem, n));
    if (!t.raw.empty())
      std::memcpy(t.raw.data(), data, t.raw.size());
  }
  return t;
}

//===- GgufWriter.cpp - Writing GGUF files --------------------------------===//
#include "io/GgufWriter.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/Support/raw_ostream.h"

#include <cassert>
#include <cstring>

using namespace moe::gguf;
using llvm::StringRef;

namespace {

MetaValue scalar(ValueType t, uint64_t bits) {
  MetaValue v;
  v.type = t;
  v.bits = bits;
  return v;
}

template <typename T> uint64_t bitsOf(T v) {
  static_assert(sizeof(T) <= 8);
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}

void putU32(std::string &out, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    out += static_cast<char>((v >> (8 * i)) & 0xFF);
}

void putU64(std::string &out, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    out += static_cast<char>((v >> (8 * i)) & 0xFF);
}

void putString(std::string &out, StringRef s) {
  putU64(out, s.size());
  out += s;
}

void putValue(std::string &out, const MetaValue &v) {
  if (unsigned size = valueTypeSize(v.type)) {
    for (unsigned i = 0; i < size; ++i)
      out += static_cast<char>((v.bits >> (8 * i)) & 0xFF);
  } else if (v.type == ValueType::String) {
    putString(out, v.str);
  } else {
    putU32(out, static_cast<uint32_t>(v.elemType));
    putU64(out, v.elems.size());
    for (const MetaValue &e : v.elems)
      putValue(out, e);
  }
}

void pad(std::string &out, uint64_t alignment) {
  out.resize(llvm::alignTo(out.size(), alignment), '\0');
}

} // namespace

MetaValue MetaValue::u8(uint8_t v) { return scalar(ValueType::U8, v); }
MetaValue MetaValue::i8(int8_t v) { return scalar(ValueType::I8, bitsOf(v)); }
MetaValue MetaValue::u16(uint16_t v) { return scalar(ValueType::U16, v); }
MetaValue MetaValue::i16(int16_t v) {
  return scalar(ValueType::I16, bitsOf(v));
}
MetaValue MetaValue::u32(uint32_t v) { return scalar(ValueType::U32, v); }
MetaValue MetaValue::i32(int32_t v) {
  return scalar(ValueType::I32, bitsOf(v));
}
MetaValue MetaValue::f32(float v) { return scalar(ValueType::F32, bitsOf(v)); }
MetaValue MetaValue::boolean(bool v) { return scalar(ValueType::Bool, v); }
MetaValue MetaValue::u64(uint64_t v) { return scalar(ValueType::U64, v); }
MetaValue MetaValue::i64(int64_t v) {
  return scalar(ValueType::I64, bitsOf(v));
}
MetaValue MetaValue::f64(double v) { return scalar(ValueType::F64, bitsOf(v)); }

MetaValue MetaValue::string(StringRef s) {
  MetaValue v;
  v.type = ValueType::String;
  v.str = s.str();
  return v;
}

MetaValue MetaValue::array(ValueType elemType, std::vector<MetaValue> elems) {
  MetaValue v;
  v.type = ValueType::Array;
  v.elemType = elemType;
  assert(llvm::all_of(elems,
                      [&](const MetaValue &e) { return e.type == elemType; }) &&
         "array element of the wrong type");
  v.elems = std::move(elems);
  return v;
}

namespace {
/// An array of `type` holding make(x) for each x of `v`.
template <typename T, typename Make>
MetaValue arrayOf(ValueType type, llvm::ArrayRef<T> v, Make make) {
  std::vector<MetaValue> elems;
  for (const T &x : v)
    elems.push_back(make(x));
  return MetaValue::array(type, std::move(elems));
}
} // namespace

MetaValue MetaValue::stringArray(llvm::ArrayRef<std::string> v) {
  return arrayOf(ValueType::String, v, [](const std::string &x) { return string(x); });
}
MetaValue MetaValue::i32Array(llvm::ArrayRef<int32_t> v) {
  return arrayOf(ValueType::I32, v, [](int32_t x) { return i32(x); });
}
MetaValue MetaValue::u32Array(llvm::ArrayRef<uint32_t> v) {
  return arrayOf(ValueType::U32, v, [](uint32_t x) { return u32(x); });
}
MetaValue MetaValue::f32Array(llvm::ArrayRef<float> v) {
  return arrayOf(ValueType::F32, v, [](float x) { return f32(x); });
}

void GgufWriter::setAlignment(uint32_t a) {
  assert(llvm::isPowerOf2_32(a) && "alignment must be a power of two");
  Alignment = a;
  add("general.alignment", MetaValue::u32(a));
}

void GgufWriter::add(StringRef key, MetaValue v) {
  for (auto &[k, old] : Metadata)
    if (k == key) {
      old = std::move(v);
      return;
    }
  Metadata.emplace_back(key.str(), std::move(v));
}

llvm::Error GgufWriter::addTensor(StringRef name, GgmlType type,
                                  llvm::ArrayRef<int64_t> ne,
                                  llvm::ArrayRef<uint8_t> data) {
  auto fail = [&](const llvm::Twine &msg) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "tensor '" + name + "': " + msg);
  };
  for (const Tensor &t : Tensors)
    if (t.name == name)
      return fail("a tensor of this name was already added");
  if (ne.size() > kMaxDims)
    return fail("more than " + llvm::Twine(kMaxDims) + " dims");
  GgmlTypeTraits traits = ggmlTypeTraits(type);
  uint64_t bytes = traits.blockBytes;
  for (size_t i = 0; i < ne.size(); ++i) {
    if (ne[i] <= 0)
      return fail("ne[" + llvm::Twine(i) + "] is not positive");
    uint64_t n = static_cast<uint64_t>(ne[i]);
    if (i == 0) {
      if (n % traits.blockElems != 0)
        return fail("ne[0] is not a multiple of the block size");
      n /= traits.blockElems;
    }
    if (__builtin_mul_overflow(bytes, n, &bytes))
      return fail("too large");
  }
  if (data.size() != bytes)
    return fail("expected " + llvm::Twine(bytes) + " bytes of data, got " +
                llvm::Twine(data.size()));
  Tensors.push_back({name.str(), type,
                     std::vector<int64_t>(ne.begin(), ne.end()),
                     std::vector<uint8_t>(data.begin(), data.end())});
  return llvm::Error::success();
}

std::string GgufWriter::bytes() const {
  std::string out = "GGUF";
  putU32(out, Version);
  putU64(out, Tensors.size());
  putU64(out, Metadata.size());
  for (const auto &[key, v] : Metadata) {
    putString(out, key);
    putU32(out, static_cast<uint32_t>(v.type));
    putValue(out, v);
  }
  uint64_t offset = 0;
  for (const Tensor &t : Tensors) {
    putString(out, t.name);
    putU32(out, t.ne.size());
    for (int64_t n : t.ne)
      putU64(out, static_cast<uint64_t>(n));
    putU32(out, static_cast<uint32_t>(t.type));
    putU64(out, offset);
    offset = llvm::alignTo(offset + t.data.size(), Alignment);
  }
  if (!Tensors.empty())
    pad(out, Alignment);
  for (const Tensor &t : Tensors) {
    out.append(reinterpret_cast<const char *>(t.data.data()), t.data.size());
    pad(out, Alignment);
  }
  return out;
}

llvm::Error GgufWriter::writeFile(StringRef path) const {
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec);
  if (ec)
    return llvm::createStringError(ec, path + ": " + ec.message());
  os << bytes();
  os.close();
  if (os.has_error())
    return llvm::createStringError(os.error(),
                                   path + ": " + os.error().message());
  return llvm::Error::success();
}

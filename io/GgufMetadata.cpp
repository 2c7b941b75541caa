//===- GgufMetadata.cpp - GGUF values and the typed getters ---------------===//
//
// Metadata values as views of the mapped file, decoded on demand from a
// layout Gguf.cpp's parser has already validated (so nothing here can fail
// or read out of bounds), and GgufFile's typed getters, whose errors name
// the key.
//
//===----------------------------------------------------------------------===//
#include "io/Gguf.h"
#include "io/GgufDetail.h"

#include "llvm/ADT/Twine.h"
#include "llvm/Support/Endian.h"

#include <cstring>
#include <limits>
#include <optional>

using namespace moe::gguf;
using detail::kInt64Max;
using detail::makeError;
using llvm::Expected;
using llvm::StringRef;
using llvm::Twine;

//===----------------------------------------------------------------------===//
// Types and values
//===----------------------------------------------------------------------===//

StringRef moe::gguf::valueTypeName(ValueType t) {
  switch (t) {
  case ValueType::U8:
    return "uint8";
  case ValueType::I8:
    return "int8";
  case ValueType::U16:
    return "uint16";
  case ValueType::I16:
    return "int16";
  case ValueType::U32:
    return "uint32";
  case ValueType::I32:
    return "int32";
  case ValueType::F32:
    return "float32";
  case ValueType::Bool:
    return "bool";
  case ValueType::String:
    return "string";
  case ValueType::Array:
    return "array";
  case ValueType::U64:
    return "uint64";
  case ValueType::I64:
    return "int64";
  case ValueType::F64:
    return "float64";
  }
  return "?";
}

unsigned moe::gguf::valueTypeSize(ValueType t) {
  switch (t) {
  case ValueType::U8:
  case ValueType::I8:
  case ValueType::Bool:
    return 1;
  case ValueType::U16:
  case ValueType::I16:
    return 2;
  case ValueType::U32:
  case ValueType::I32:
  case ValueType::F32:
    return 4;
  case ValueType::U64:
  case ValueType::I64:
  case ValueType::F64:
    return 8;
  case ValueType::String:
  case ValueType::Array:
    return 0;
  }
  return 0;
}

StringRef moe::gguf::moeSupportedTypesList() {
  static const std::string list = [] {
    std::string s;
#define X(E, ID, N, BE, BB, S)                                                 \
  if (S)                                                                       \
    s += (s.empty() ? "" : ", ") + std::string(N);
    MOE_GGML_TYPES(X)
#undef X
    return s;
  }();
  return list;
}

bool Value::isInteger() const {
  switch (Type) {
  case ValueType::U8:
  case ValueType::I8:
  case ValueType::U16:
  case ValueType::I16:
  case ValueType::U32:
  case ValueType::I32:
  case ValueType::U64:
  case ValueType::I64:
    return true;
  default:
    return false;
  }
}

std::optional<int64_t> Value::asSigned() const {
  switch (Type) {
  case ValueType::I8:
    return static_cast<int8_t>(Bits);
  case ValueType::I16:
    return static_cast<int16_t>(Bits);
  case ValueType::I32:
    return static_cast<int32_t>(Bits);
  case ValueType::I64:
    return static_cast<int64_t>(Bits);
  case ValueType::U8:
  case ValueType::U16:
  case ValueType::U32:
  case ValueType::U64:
    if (Bits > kInt64Max)
      return std::nullopt;
    return static_cast<int64_t>(Bits);
  default:
    return std::nullopt;
  }
}

std::optional<uint64_t> Value::asUnsigned() const {
  if (!isInteger())
    return std::nullopt;
  if (auto s = asSigned())
    return *s < 0 ? std::nullopt : std::optional<uint64_t>(*s);
  return Bits; // a uint64 above INT64_MAX
}

std::optional<double> Value::asFloat() const {
  if (Type == ValueType::F32) {
    uint32_t b = static_cast<uint32_t>(Bits);
    float f;
    std::memcpy(&f, &b, 4);
    return f;
  }
  if (Type == ValueType::F64) {
    double d;
    std::memcpy(&d, &Bits, 8);
    return d;
  }
  return std::nullopt;
}

std::optional<bool> Value::asBool() const {
  if (Type != ValueType::Bool)
    return std::nullopt;
  return Bits != 0;
}

std::optional<StringRef> Value::asString() const {
  if (Type != ValueType::String)
    return std::nullopt;
  return StringRef(reinterpret_cast<const char *>(Raw.data()), Raw.size());
}

Value Value::element(uint64_t i) const {
  assert(isArray() && i < Count && "element of a non-array or out of range");
  if (unsigned size = valueTypeSize(ElemType)) {
    uint64_t pos = i * size;
    return decode(ElemType, Raw, pos);
  }
  uint64_t pos = 0;
  for (uint64_t k = 0; k < i; ++k)
    decode(ElemType, Raw, pos);
  return decode(ElemType, Raw, pos);
}

std::vector<Value> Value::elements() const {
  assert(isArray() && "elements of a non-array");
  std::vector<Value> out;
  out.reserve(Count); // validated: Count elements are in the file
  uint64_t pos = 0;
  for (uint64_t k = 0; k < Count; ++k)
    out.push_back(decode(ElemType, Raw, pos));
  return out;
}

std::string Value::describe() const {
  auto article = [](ValueType t) {
    return (t == ValueType::I8 || t == ValueType::I16 || t == ValueType::I32 ||
            t == ValueType::I64 || t == ValueType::Array)
               ? "an "
               : "a ";
  };
  std::string s = article(Type) + valueTypeName(Type).str();
  if (isArray())
    s += " of " + valueTypeName(ElemType).str();
  return s;
}

llvm::SmallVector<int64_t, kMaxDims> TensorInfo::dims() const {
  llvm::SmallVector<int64_t, kMaxDims> d(neDims().rbegin(), neDims().rend());
  return d;
}

int64_t TensorInfo::numElements() const {
  return ne[0] * ne[1] * ne[2] * ne[3]; // checked when read
}

Value Value::decode(ValueType t, llvm::ArrayRef<uint8_t> data, uint64_t &pos) {
  Value v;
  v.Type = t;
  if (unsigned size = valueTypeSize(t)) {
    for (unsigned b = 0; b < size; ++b)
      v.Bits |= static_cast<uint64_t>(data[pos + b]) << (8 * b);
    pos += size;
    return v;
  }
  if (t == ValueType::String) {
    uint64_t len = llvm::support::endian::read64le(data.data() + pos);
    v.Raw = data.slice(pos + 8, len);
    pos += 8 + len;
    return v;
  }
  v.ElemType = static_cast<ValueType>(
      llvm::support::endian::read32le(data.data() + pos));
  v.Count = llvm::support::endian::read64le(data.data() + pos + 4);
  pos += 12;
  uint64_t start = pos;
  if (unsigned size = valueTypeSize(v.ElemType))
    pos += v.Count * size;
  else
    for (uint64_t k = 0; k < v.Count; ++k)
      decode(v.ElemType, data, pos);
  v.Raw = data.slice(start, pos - start);
  return v;
}

//===----------------------------------------------------------------------===//
// Typed getters
//===----------------------------------------------------------------------===//

const Value *GgufFile::find(StringRef key) const {
  auto it = KeyIndex.find(key);
  return it == KeyIndex.end() ? nullptr : &Metadata[it->second].value;
}

llvm::Error GgufFile::keyError(StringRef key, const Twine &msg) const {
  return makeError(Name + ": key '" + key + "' " + msg);
}

Expected<const Value &> GgufFile::lookup(StringRef key) const {
  if (const Value *v = find(key))
    return *v;
  return makeError(Name + ": missing key '" + key + "'");
}

/// The integer as text, whatever its type.
static std::string intText(const Value &v) {
  if (std::optional<int64_t> s = v.asSigned())
    return std::to_string(*s);
  return std::to_string(*v.asUnsigned());
}

template <typename T>
Expected<T> GgufFile::getInt(StringRef key, StringRef typeName) const {
  Expected<const Value &> v = lookup(key);
  if (!v)
    return v.takeError();
  if (!v->isInteger())
    return keyError(key, "is " + v->describe() + ", expected an integer");
  bool fits;
  T result{};
  if constexpr (std::is_signed_v<T>) {
    std::optional<int64_t> s = v->asSigned();
    fits = s && *s >= std::numeric_limits<T>::min() &&
           *s <= std::numeric_limits<T>::max();
    if (fits)
      result = static_cast<T>(*s);
  } else {
    std::optional<uint64_t> u = v->asUnsigned();
    fits = u && *u <= std::numeric_limits<T>::max();
    if (fits)
      result = static_cast<T>(*u);
  }
  if (!fits)
    return keyError(key, "has value " + intText(*v) +
                             ", which does not fit in " + typeName);
  return result;
}

Expected<uint8_t> GgufFile::getU8(StringRef key) const {
  return getInt<uint8_t>(key, "uint8");
}
Expected<uint32_t> GgufFile::getU32(StringRef key) const {
  return getInt<uint32_t>(key, "uint32");
}
Expected<uint64_t> GgufFile::getU64(StringRef key) const {
  return getInt<uint64_t>(key, "uint64");
}
Expected<int32_t> GgufFile::getI32(StringRef key) const {
  return getInt<int32_t>(key, "int32");
}
Expected<int64_t> GgufFile::getI64(StringRef key) const {
  return getInt<int64_t>(key, "int64");
}

Expected<double> GgufFile::getF64(StringRef key) const {
  Expected<const Value &> v = lookup(key);
  if (!v)
    return v.takeError();
  if (std::optional<double> d = v->asFloat())
    return *d;
  return keyError(key, "is " + v->describe() + ", expected a float");
}

Expected<float> GgufFile::getF32(StringRef key) const {
  Expected<double> d = getF64(key);
  if (!d)
    return d.takeError();
  return static_cast<float>(*d);
}

Expected<bool> GgufFile::getBool(StringRef key) const {
  Expected<const Value &> v = lookup(key);
  if (!v)
    return v.takeError();
  if (std::optional<bool> b = v->asBool())
    return *b;
  return keyError(key, "is " + v->describe() + ", expected a bool");
}

Expected<StringRef> GgufFile::getString(StringRef key) const {
  Expected<const Value &> v = lookup(key);
  if (!v)
    return v.takeError();
  if (std::optional<StringRef> s = v->asString())
    return *s;
  return keyError(key, "is " + v->describe() + ", expected a string");
}

/// The array at `key` if its elements satisfy `ok`, else an error saying
/// it is not `expected`.
static Expected<Value> arrayOf(const GgufFile &f, Expected<const Value &> v,
                               StringRef key, bool (*ok)(ValueType),
                               StringRef expected) {
  if (!v)
    return v.takeError();
  if (v->isArray() && ok(v->elementType()))
    return *v;
  return makeError(f.name() + ": key '" + key + "' is " + v->describe() +
                   ", expected " + expected);
}

static bool isIntegerType(ValueType t) {
  return t != ValueType::Bool && valueTypeSize(t) != 0 && t != ValueType::F32 &&
         t != ValueType::F64;
}

Expected<std::vector<int64_t>> GgufFile::getIntArray(StringRef key) const {
  Expected<Value> v =
      arrayOf(*this, lookup(key), key, isIntegerType, "an array of integers");
  if (!v)
    return v.takeError();
  std::vector<int64_t> out;
  out.reserve(v->size());
  for (uint64_t i = 0; i < v->size(); ++i) {
    Value e = v->element(i);
    std::optional<int64_t> s = e.asSigned();
    if (!s)
      return keyError(key, "has element " + Twine(i) + " = " + intText(e) +
                               ", which does not fit in int64");
    out.push_back(*s);
  }
  return out;
}

Expected<std::vector<double>> GgufFile::getFloatArray(StringRef key) const {
  Expected<Value> v = arrayOf(
      *this, lookup(key), key,
      [](ValueType t) { return t == ValueType::F32 || t == ValueType::F64; },
      "an array of floats");
  if (!v)
    return v.takeError();
  std::vector<double> out;
  out.reserve(v->size());
  for (uint64_t i = 0; i < v->size(); ++i)
    out.push_back(*v->element(i).asFloat());
  return out;
}

Expected<std::vector<StringRef>> GgufFile::getStringArray(StringRef key) const {
  Expected<Value> v = arrayOf(
      *this, lookup(key), key,
      [](ValueType t) { return t == ValueType::String; },
      "an array of strings");
  if (!v)
    return v.takeError();
  std::vector<StringRef> out;
  out.reserve(v->size());
  for (const Value &e : v->elements())
    out.push_back(*e.asString());
  return out;
}

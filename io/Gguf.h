//===- Gguf.h - Reading GGUF model files ------------------------*- C++ -*-===//
//
// A reader for GGUF (llama.cpp's model format), versions 2 and 3,
// little-endian:
//
//   "GGUF" u32 version  u64 tensor_count  u64 metadata_kv_count
//   metadata_kv_count x { string key, u32 value_type, value }
//   tensor_count x { string name, u32 n_dims, u64 ne[n_dims], u32 type,
//                    u64 offset (relative to the data section) }
//   padding to general.alignment (default 32), the data section
//
// where a string is a u64 length and that many bytes, and an array value is
// a u32 element type, a u64 count and the elements. The file is mapped and
// nothing is copied: strings, arrays of scalars and tensor data are views of
// the mapping, valid as long as the GgufFile lives.
//
// The whole file structure is validated when it is opened, so a GgufFile
// once made is consistent: every string, array and tensor lies inside the
// file, tensor byte sizes follow from their type and dims, tensor data is
// aligned and does not overlap. A malformed file is an llvm::Error
//
//   "<file>: offset <N>: <what was expected and what was found>"
//
// never a crash, and nothing is allocated for a count or length before it has
// been checked against the bytes actually left in the file. Whether moe can
// use a tensor's type is checked only when its data is asked for
// (tensorData), so a file with, say, q4_K token embeddings still opens.
//
// This library depends on nothing else in moe (see docs/GGUF.md).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "io/GgmlType.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace llvm {
class MemoryBuffer;
} // namespace llvm

namespace moe::gguf {

/// GGUF metadata value types, valued by their ids in the file.
enum class ValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6,
  Bool = 7, String = 8, Array = 9, U64 = 10, I64 = 11, F64 = 12,
};
constexpr uint32_t kMaxValueType = 12;

/// The GGUF specification's name of a value type: "uint8", ..., "float64".
llvm::StringRef valueTypeName(ValueType t);

/// Bytes of one value of a fixed-size type (0 for string and array).
unsigned valueTypeSize(ValueType t);

/// The most deeply arrays may nest (an array of arrays is depth 2).
constexpr unsigned kMaxArrayDepth = 8;
/// GGML_MAX_DIMS: the most dims a tensor may have.
constexpr unsigned kMaxDims = 4;

/// A metadata value: a view into the file, cheap to copy.
class Value {
public:
  ValueType type() const { return Type; }
  bool isInteger() const;
  bool isFloat() const {
    return Type == ValueType::F32 || Type == ValueType::F64;
  }
  bool isArray() const { return Type == ValueType::Array; }

  /// An integer value that fits in the requested type; nullopt for a value
  /// of another type or out of range.
  std::optional<int64_t> asSigned() const;
  std::optional<uint64_t> asUnsigned() const;
  /// A float32 or float64 value (nullopt for other types).
  std::optional<double> asFloat() const;
  std::optional<bool> asBool() const;
  std::optional<llvm::StringRef> asString() const;

  /// Arrays: the element type and count.
  ValueType elementType() const { return ElemType; }
  uint64_t size() const { return Count; }
  /// Element i of an array. Constant time for fixed-size elements, a walk
  /// over the preceding elements for strings and nested arrays.
  Value element(uint64_t i) const;
  /// All elements of an array, decoded in one pass.
  std::vector<Value> elements() const;
  /// The packed little-endian elements of an array of fixed-size scalars.
  llvm::ArrayRef<uint8_t> rawElements() const { return Raw; }

  /// "a uint32", "a string", "an array of float32": for messages.
  std::string describe() const;

private:
  friend class Parser;
  /// Decodes the value of type t at data[pos], which the parser has
  /// validated, and advances pos past it.
  static Value decode(ValueType t, llvm::ArrayRef<uint8_t> data, uint64_t &pos);

  ValueType Type = ValueType::U8;
  ValueType ElemType = ValueType::U8; // arrays
  uint64_t Bits = 0;                  // scalars, zero-extended
  uint64_t Count = 0;                 // arrays
  llvm::ArrayRef<uint8_t> Raw;        // a string's bytes; an array's elements
};

/// One metadata entry, in file order.
struct KeyValue {
  llvm::StringRef key;
  Value value;
  uint64_t offset; // file offset of the entry (its key length)
};

/// One tensor's description from the tensor info table.
struct TensorInfo {
  llvm::StringRef name;
  uint32_t nDims = 0;
  /// ggml's ne[], innermost axis first; entries from nDims on are 1.
  std::array<int64_t, kMaxDims> ne = {1, 1, 1, 1};
  GgmlType type = GgmlType::F32;
  /// Offset of the data relative to the data section, and its byte size.
  uint64_t offset = 0;
  uint64_t nbytes = 0;
  /// File offset of this entry in the tensor info table (its name length).
  uint64_t infoOffset = 0;

  /// ne[0..nDims), ggml order (innermost first).
  llvm::ArrayRef<int64_t> neDims() const { return {ne.data(), nDims}; }
  /// The dims outermost first, as the IR writes them: ne reversed.
  llvm::SmallVector<int64_t, kMaxDims> dims() const;
  int64_t numElements() const;
  llvm::StringRef typeName() const { return ggmlTypeName(type); }
};

/// A validated GGUF file, mapped into memory.
class GgufFile {
public:
  /// Maps and validates the file at `path`. Errors start with "<path>: ".
  static llvm::Expected<std::unique_ptr<GgufFile>> open(llvm::StringRef path);
  /// Validates `buffer` (named by its identifier in errors), taking it over.
  static llvm::Expected<std::unique_ptr<GgufFile>>
  parse(std::unique_ptr<llvm::MemoryBuffer> buffer);
  /// Validates bytes the caller keeps alive for the GgufFile's lifetime.
  static llvm::Expected<std::unique_ptr<GgufFile>>
  parse(llvm::ArrayRef<uint8_t> bytes, llvm::StringRef name);

  ~GgufFile();
  GgufFile(const GgufFile &) = delete;
  GgufFile &operator=(const GgufFile &) = delete;

  llvm::StringRef name() const { return Name; }
  uint32_t version() const { return Version; }
  /// general.alignment, or 32 when the file does not set it.
  uint64_t alignment() const { return Alignment; }
  /// File offset of the data section (the end of the file when there are
  /// no tensors).
  uint64_t dataOffset() const { return DataOffset; }
  /// The whole file, as mapped.
  llvm::ArrayRef<uint8_t> bytes() const { return Bytes; }
  /// Drops the whole pages of [p, p + n) that lie in a mapping of the file
  /// this GgufFile made (open): they leave the process's resident memory
  /// and are read from the file again if touched. No effect on memory the
  /// file was parsed from, or outside the file.
  void releasePages(const void *p, size_t n) const;

  // Metadata.
  llvm::ArrayRef<KeyValue> metadata() const { return Metadata; }
  const Value *find(llvm::StringRef key) const;
  bool has(llvm::StringRef key) const { return find(key) != nullptr; }

  /// Typed getters. A missing key is "<file>: missing key 'K'"; a value of
  /// another type "<file>: key 'K' is a string, expected an integer". The
  /// integer getters take any integer type whose value fits; the float
  /// getters take float32 and float64.
  llvm::Expected<uint8_t> getU8(llvm::StringRef key) const;
  llvm::Expected<uint32_t> getU32(llvm::StringRef key) const;
  llvm::Expected<uint64_t> getU64(llvm::StringRef key) const;
  llvm::Expected<int32_t> getI32(llvm::StringRef key) const;
  llvm::Expected<int64_t> getI64(llvm::StringRef key) const;
  llvm::Expected<float> getF32(llvm::StringRef key) const;
  llvm::Expected<double> getF64(llvm::StringRef key) const;
  llvm::Expected<bool> getBool(llvm::StringRef key) const;
  llvm::Expected<llvm::StringRef> getString(llvm::StringRef key) const;
  /// Arrays: integers (any integer element type, each fitting int64),
  /// floats (float32 or float64 elements), strings.
  llvm::Expected<std::vector<int64_t>> getIntArray(llvm::StringRef key) const;
  llvm::Expected<std::vector<double>> getFloatArray(llvm::StringRef key) const;
  llvm::Expected<std::vector<llvm::StringRef>>
  getStringArray(llvm::StringRef key) const;

  // Tensors.
  llvm::ArrayRef<TensorInfo> tensors() const { return Tensors; }
  const TensorInfo *findTensor(llvm::StringRef name) const;
  /// "<file>: no tensor named 'N'" when absent.
  llvm::Expected<const TensorInfo &> tensor(llvm::StringRef name) const;
  /// The tensor's bytes, a view of the mapping (never a copy), aligned as
  /// the file is (the mapping is page-aligned).
  llvm::ArrayRef<uint8_t> tensorBytes(const TensorInfo &t) const;
  /// The data of tensor `name`. With `requireSupported`, a type moe does not
  /// use as stored is "<file>: unsupported tensor type q4_K in tensor 'N'
  /// (moe uses ...)".
  llvm::Expected<llvm::ArrayRef<uint8_t>>
  tensorData(llvm::StringRef name, bool requireSupported = true) const;

private:
  GgufFile() = default;
  friend class Parser;
  static llvm::Expected<std::unique_ptr<GgufFile>>
  parseOwned(std::unique_ptr<GgufFile> file);
  llvm::Error keyError(llvm::StringRef key, const llvm::Twine &msg) const;
  llvm::Expected<const Value &> lookup(llvm::StringRef key) const;
  template <typename T>
  llvm::Expected<T> getInt(llvm::StringRef key, llvm::StringRef typeName) const;

  struct Storage;
  std::unique_ptr<Storage> Owner; // the mapping or buffer, if owned
  std::string Name;
  llvm::ArrayRef<uint8_t> Bytes;
  uint32_t Version = 0;
  uint64_t Alignment = 32;
  uint64_t DataOffset = 0;
  std::vector<KeyValue> Metadata;
  std::vector<TensorInfo> Tensors;
  llvm::StringMap<uint32_t> KeyIndex;
  llvm::StringMap<uint32_t> TensorIndex;
};

} // namespace moe::gguf

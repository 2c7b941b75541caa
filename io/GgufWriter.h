//===- GgufWriter.h - Writing GGUF files ------------------------*- C++ -*-===//
//
// Builds a GGUF v2 or v3 file in memory: metadata of every value type
// (nested arrays included) in insertion order, then tensors of any known
// ggml type, each placed at the next multiple of the alignment with zero
// padding, as gguf-py's GGUFWriter lays them out. Used to make test models
// and test files; the reader (Gguf.h) is its check.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "io/Gguf.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moe::gguf {

/// An owned metadata value to write.
struct MetaValue {
  ValueType type = ValueType::U8;
  uint64_t bits = 0; // fixed-size scalars: the little-endian bits
  std::string str;   // strings
  ValueType elemType = ValueType::U8; // arrays
  std::vector<MetaValue> elems;       // arrays: each of type elemType

  static MetaValue u8(uint8_t v);
  static MetaValue i8(int8_t v);
  static MetaValue u16(uint16_t v);
  static MetaValue i16(int16_t v);
  static MetaValue u32(uint32_t v);
  static MetaValue i32(int32_t v);
  static MetaValue f32(float v);
  static MetaValue boolean(bool v);
  static MetaValue string(llvm::StringRef v);
  static MetaValue u64(uint64_t v);
  static MetaValue i64(int64_t v);
  static MetaValue f64(double v);
  /// An array; every element must have type elemType.
  static MetaValue array(ValueType elemType, std::vector<MetaValue> elems);
  static MetaValue stringArray(llvm::ArrayRef<std::string> v);
  static MetaValue i32Array(llvm::ArrayRef<int32_t> v);
  static MetaValue u32Array(llvm::ArrayRef<uint32_t> v);
  static MetaValue f32Array(llvm::ArrayRef<float> v);
};

class GgufWriter {
public:
  /// version: 2 or 3 (the layouts are the same).
  explicit GgufWriter(uint32_t version = 3) : Version(version) {}

  /// Aligns tensor data to `a` (a power of two) and records it as the
  /// uint32 key general.alignment, where this is called in the key order.
  void setAlignment(uint32_t a);
  uint32_t alignment() const { return Alignment; }

  /// Appends a key (or replaces the value of an existing one in place).
  void add(llvm::StringRef key, MetaValue v);
  void addU32(llvm::StringRef key, uint32_t v) { add(key, MetaValue::u32(v)); }
  void addF32(llvm::StringRef key, float v) { add(key, MetaValue::f32(v)); }
  void addBool(llvm::StringRef key, bool v) { add(key, MetaValue::boolean(v)); }
  void addString(llvm::StringRef key, llvm::StringRef v) {
    add(key, MetaValue::string(v));
  }

  /// Appends a tensor; `ne` in ggml order (innermost first, at most 4), and
  /// `data` exactly the byte size type and ne give. The data is copied.
  llvm::Error addTensor(llvm::StringRef name, GgmlType type,
                        llvm::ArrayRef<int64_t> ne,
                        llvm::ArrayRef<uint8_t> data);

  /// The file's bytes.
  std::string bytes() const;
  llvm::Error writeFile(llvm::StringRef path) const;

private:
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> ne;
    std::vector<uint8_t> data;
  };
  uint32_t Version;
  uint32_t Alignment = 32;
  std::vector<std::pair<std::string, MetaValue>> Metadata;
  std::vector<Tensor> Tensors;
};

} // namespace moe::gguf

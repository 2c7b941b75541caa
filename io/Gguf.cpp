//===- Gguf.cpp - Reading GGUF model files --------------------------------===//
//
// One pass over the file in order: header, metadata, tensor infos, then the
// data section's bounds. Every read goes through need(), which turns running
// out of bytes into an error naming the offset and the field; every count or
// length is compared with the bytes left before anything is reserved or
// walked, so a hostile count fails fast instead of allocating. Nested arrays
// recurse at most kMaxArrayDepth deep.
//
// Values are recorded as views (type, count, byte range) and decoded again on
// demand by Value's accessors (GgufMetadata.cpp), which can trust the layout
// once it has passed the validation here.
//
//===----------------------------------------------------------------------===//
#include "io/Gguf.h"
#include "io/GgufDetail.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Process.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>

#include <sys/mman.h>

using namespace moe::gguf;
using detail::kInt64Max;
using detail::makeError;
using llvm::ArrayRef;
using llvm::Error;
using llvm::Expected;
using llvm::StringRef;
using llvm::Twine;

static_assert(!llvm::sys::IsBigEndianHost, "moe needs a little-endian host");

namespace {

/// The bytes as a quoted string, printable ASCII kept, others as \xNN.
std::string quoted(ArrayRef<uint8_t> bytes) {
  std::string s = "\"";
  for (uint8_t c : bytes) {
    if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
      s += static_cast<char>(c);
    } else {
      static const char hex[] = "0123456789abcdef";
      s += "\\x";
      s += hex[c >> 4];
      s += hex[c & 15];
    }
  }
  return s + "\"";
}

std::string bytesLeft(uint64_t n) {
  return n == 1 ? "1 byte" : std::to_string(n) + " bytes";
}

/// Minimal bytes one array element of type t takes in the file.
uint64_t minElementSize(ValueType t) {
  if (t == ValueType::String)
    return 8; // the length
  if (t == ValueType::Array)
    return 12; // element type + count
  return valueTypeSize(t);
}

} // namespace
//===----------------------------------------------------------------------===//
// Parsing
//===----------------------------------------------------------------------===//

namespace moe::gguf {

class Parser {
public:
  explicit Parser(GgufFile &file) : F(file), Data(file.Bytes) {}

  Error run() {
    uint64_t nTensors = 0, nKv = 0;
    if (Error e = header(nTensors, nKv))
      return e;
    if (Error e = keyValues(nKv))
      return e;
    if (Error e = tensorInfos(nTensors))
      return e;
    return dataSection();
  }

private:
  GgufFile &F;
  ArrayRef<uint8_t> Data;
  uint64_t Pos = 0;
  std::vector<uint64_t> OffsetFieldPos; // per tensor, for data errors
  StringRef CurrentKey;                 // the key whose value is being read

  uint64_t left() const { return Data.size() - Pos; }

  Error fail(uint64_t at, const Twine &msg) {
    return makeError(F.Name + ": offset " + Twine(at) + ": " + msg);
  }

  /// Fails unless n more bytes are there: "expected WHAT (DETAIL, n bytes)".
  Error need(uint64_t n, const Twine &what, StringRef detail = "") {
    if (left() >= n)
      return Error::success();
    std::string found = left() == 0
                            ? "found end of file"
                            : "found end of file after " + bytesLeft(left());
    std::string prefix = detail.empty() ? "" : (detail + ", ").str();
    return fail(Pos, "expected " + what + " (" + prefix + bytesLeft(n) + "), " +
                         found);
  }

  /// A little-endian T at the cursor.
  template <typename T> Expected<T> scalar(const Twine &what) {
    if (Error e = need(sizeof(T), what))
      return e;
    T v = llvm::support::endian::read<T, llvm::endianness::little>(Data.data() + Pos);
    Pos += sizeof(T);
    return v;
  }
  Expected<uint32_t> u32(const Twine &what) { return scalar<uint32_t>(what); }
  Expected<uint64_t> u64(const Twine &what) { return scalar<uint64_t>(what); }

  Expected<StringRef> string(const Twine &what) {
    uint64_t at = Pos;
    Expected<uint64_t> len = u64("the length of " + what);
    if (!len)
      return len.takeError();
    if (*len > left())
      return fail(at, what + " has length " + Twine(*len) + ", but only " +
                          bytesLeft(left()) + " are left in the file");
    StringRef s(reinterpret_cast<const char *>(Data.data() + Pos), *len);
    Pos += *len;
    return s;
  }

  Error checkBool(uint64_t at, const Twine &what) {
    uint8_t b = Data[at];
    if (b > 1)
      return fail(at, what + " is a bool with byte value " +
                          Twine(static_cast<unsigned>(b)) +
                          ", expected 0 or 1");
    return Error::success();
  }

  /// Reads a value of type t (already read) named `what` ("key 'k'",
  /// "element 3 of key 'k'"); `depth` is its array nesting depth.
  Expected<Value> value(ValueType t, const Twine &what, unsigned depth) {
    Value v;
    v.Type = t;
    const uint64_t at = Pos;
    if (unsigned size = valueTypeSize(t)) {
      if (Error e = need(size, "the value of " + what, valueTypeName(t)))
        return e;
      if (t == ValueType::Bool)
        if (Error e = checkBool(at, "the value of " + what))
          return e;
      return Value::decode(t, Data, Pos);
    }
    if (t == ValueType::String) {
      Expected<StringRef> s = string("the value of " + what);
      if (!s)
        return s.takeError();
      v.Raw = ArrayRef<uint8_t>(reinterpret_cast<const uint8_t *>(s->data()),
                                s->size());
      return v;
    }
    if (depth > kMaxArrayDepth)
      return fail(at, "key '" + CurrentKey + "' nests arrays more than " +
                          Twine(kMaxArrayDepth) + " deep");
    Expected<uint32_t> et = u32("the element type of " + what);
    if (!et)
      return et.takeError();
    if (*et > kMaxValueType)
      return fail(at, "unknown element type " + Twine(*et) + " in " + what +
                          ", expected 0 to " + Twine(kMaxValueType));
    v.ElemType = static_cast<ValueType>(*et);
    const uint64_t countAt = Pos;
    Expected<uint64_t> count = u64("the element count of " + what);
    if (!count)
      return count.takeError();
    v.Count = *count;
    if (v.Count > left() / minElementSize(v.ElemType))
      return fail(countAt, what + " has " + Twine(v.Count) + " elements of " +
                               "type " + valueTypeName(v.ElemType) +
                               ", more than the " + bytesLeft(left()) +
                               " left in the file can hold");
    const uint64_t start = Pos;
    if (unsigned size = valueTypeSize(v.ElemType)) {
      if (v.ElemType == ValueType::Bool)
        for (uint64_t i = 0; i < v.Count; ++i)
          if (Error e =
                  checkBool(start + i, "element " + Twine(i) + " of " + what))
            return e;
      Pos += v.Count * size;
    } else {
      for (uint64_t i = 0; i < v.Count; ++i) {
        Expected<Value> elem =
            value(v.ElemType, "element " + Twine(i) + " of " + what, depth + 1);
        if (!elem)
          return elem.takeError();
      }
    }
    v.Raw = Data.slice(start, Pos - start);
    return v;
  }

  Error header(uint64_t &nTensors, uint64_t &nKv) {
    static const uint8_t magic[4] = {'G', 'G', 'U', 'F'};
    if (Error e = need(4, "the magic \"GGUF\""))
      return e;
    if (std::memcmp(Data.data(), magic, 4) != 0)
      return fail(0, "expected the magic \"GGUF\", found " +
                         quoted(Data.take_front(4)));
    Pos = 4;
    Expected<uint32_t> version = u32("the version");
    if (!version)
      return version.takeError();
    if (*version == 1)
      return fail(4,
                  "GGUF version 1 is not supported, expected version 2 or 3");
    if (*version != 2 && *version != 3) {
      uint32_t swapped = llvm::byteswap(*version);
      if (swapped >= 1 && swapped <= 3)
        return fail(4, "version " + Twine(*version) + " is " + Twine(swapped) +
                           " byte-swapped: big-endian GGUF files are not "
                           "supported");
      return fail(4, "unknown GGUF version " + Twine(*version) +
                         ", expected 2 or 3");
    }
    F.Version = *version;
    Expected<uint64_t> t = u64("the tensor count");
    if (!t)
      return t.takeError();
    Expected<uint64_t> kv = u64("the metadata key-value count");
    if (!kv)
      return kv.takeError();
    // Bounds only: a tensor info takes at least 24 bytes (name length,
    // n_dims, type, offset), a key-value pair at least 13 (key length,
    // value type, a one-byte value).
    if (*t > left() / 24)
      return fail(8, "tensor count " + Twine(*t) + " is more than the " +
                         bytesLeft(left()) +
                         " left in the file can hold (a tensor info takes at "
                         "least 24 bytes)");
    if (*kv > left() / 13)
      return fail(16, "metadata key-value count " + Twine(*kv) +
                          " is more than the " + bytesLeft(left()) +
                          " left in the file can hold (a key-value pair takes "
                          "at least 13 bytes)");
    nTensors = *t;
    nKv = *kv;
    return Error::success();
  }

  Error keyValues(uint64_t n) {
    F.Metadata.reserve(n);
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t at = Pos;
      Expected<StringRef> key = string("key #" + Twine(i));
      if (!key)
        return key.takeError();
      auto [it, inserted] = F.KeyIndex.try_emplace(*key, F.Metadata.size());
      if (!inserted)
        return fail(at, "duplicate key '" + *key + "' (first at offset " +
                            Twine(F.Metadata[it->second].offset) + ")");
      const uint64_t typeAt = Pos;
      Expected<uint32_t> type = u32("the value type of key '" + *key + "'");
      if (!type)
        return type.takeError();
      if (*type > kMaxValueType)
        return fail(typeAt, "unknown value type " + Twine(*type) + " of key '" +
                                *key + "', expected 0 to " +
                                Twine(kMaxValueType));
      const uint64_t valueAt = Pos;
      CurrentKey = *key;
      Expected<Value> v =
          value(static_cast<ValueType>(*type), "key '" + *key + "'", 1);
      if (!v)
        return v.takeError();
      if (*key == "general.alignment")
        if (Error e = alignment(*v, typeAt, valueAt))
          return e;
      F.Metadata.push_back({*key, *v, at});
    }
    return Error::success();
  }

  Error alignment(const Value &v, uint64_t typeAt, uint64_t valueAt) {
    if (!v.isInteger())
      return fail(typeAt, "key 'general.alignment' is " + v.describe() +
                              ", expected an integer");
    std::optional<uint64_t> a = v.asUnsigned();
    if (!a || !llvm::isPowerOf2_64(*a) || *a > (1u << 30)) {
      std::string text = a ? std::to_string(*a) : std::to_string(*v.asSigned());
      return fail(valueAt, "general.alignment is " + text +
                               ", expected a power of two from 1 to 2^30");
    }
    F.Alignment = *a;
    return Error::success();
  }

  Error tensorInfos(uint64_t n) {
    F.Tensors.reserve(n);
    OffsetFieldPos.reserve(n);
    for (uint64_t i = 0; i < n; ++i) {
      TensorInfo t;
      t.infoOffset = Pos;
      Expected<StringRef> name = string("the name of tensor #" + Twine(i));
      if (!name)
        return name.takeError();
      t.name = *name;
      auto [it, inserted] = F.TensorIndex.try_emplace(*name, F.Tensors.size());
      if (!inserted)
        return fail(t.infoOffset,
                    "duplicate tensor name '" + *name + "' (first at offset " +
                        Twine(F.Tensors[it->second].infoOffset) + ")");
      const std::string tensorName = ("tensor '" + *name + "'").str();
      const uint64_t dimsAt = Pos;
      Expected<uint32_t> nDims = u32("the number of dims of " + tensorName);
      if (!nDims)
        return nDims.takeError();
      if (*nDims > kMaxDims)
        return fail(dimsAt, tensorName + " has " + Twine(*nDims) +
                                " dims, expected at most " + Twine(kMaxDims));
      t.nDims = *nDims;
      uint64_t elements = 1;
      for (uint32_t j = 0; j < t.nDims; ++j) {
        const uint64_t neAt = Pos;
        const std::string neName =
            ("ne[" + Twine(j) + "] of " + tensorName).str();
        Expected<uint64_t> ne = u64(neName);
        if (!ne)
          return ne.takeError();
        if (*ne == 0 || *ne > kInt64Max)
          return fail(neAt, neName + " is " + Twine(static_cast<int64_t>(*ne)) +
                                ", expected a positive size");
        if (__builtin_mul_overflow(elements, *ne, &elements) ||
            elements > kInt64Max)
          return fail(neAt, tensorName +
                                " has more than 2^63-1 elements, ne[0.." +
                                Twine(j) + "] multiply past int64");
        t.ne[j] = static_cast<int64_t>(*ne);
      }
      // No model tensor comes near 2^40 elements (4 TiB at one byte each);
      // more is a corrupt or hostile header, refused before any allocation.
      if (elements > (uint64_t(1) << 40))
        return fail(dimsAt, tensorName + " has " + Twine(elements) +
                                " elements, more than the limit of 2^40");
      const uint64_t typeAt = Pos;
      Expected<uint32_t> typeId = u32("the type of " + tensorName);
      if (!typeId)
        return typeId.takeError();
      std::optional<GgmlTypeTraits> traits = ggmlTypeTraits(*typeId);
      if (!traits)
        return fail(typeAt,
                    tensorName + " has unknown ggml type id " + Twine(*typeId));
      t.type = traits->type;
      if (t.ne[0] % traits->blockElems != 0)
        return fail(typeAt, tensorName + " of type " + traits->name +
                                " has ne[0] = " + Twine(t.ne[0]) +
                                ", not a multiple of its block size " +
                                Twine(traits->blockElems));
      // At most 2^40 elements of at most 8 bytes each: no overflow.
      uint64_t bytes = traits->blockBytes;
      for (unsigned j = 0; j < kMaxDims; ++j)
        bytes *= j == 0 ? static_cast<uint64_t>(t.ne[0]) / traits->blockElems
                        : static_cast<uint64_t>(t.ne[j]);
      t.nbytes = bytes;
      OffsetFieldPos.push_back(Pos);
      Expected<uint64_t> offset = u64("the data offset of " + tensorName);
      if (!offset)
        return offset.takeError();
      if (*offset % F.Alignment != 0)
        return fail(OffsetFieldPos.back(),
                    "data offset " + Twine(*offset) + " of " + tensorName +
                        " is not a multiple of the alignment " +
                        Twine(F.Alignment));
      t.offset = *offset;
      F.Tensors.push_back(t);
    }
    return Error::success();
  }

  Error dataSection() {
    const uint64_t size = Data.size();
    const uint64_t dataStart = llvm::alignTo(Pos, F.Alignment);
    if (F.Tensors.empty()) {
      F.DataOffset = std::min(dataStart, size);
      return Error::success();
    }
    if (dataStart > size)
      return fail(Pos, "expected padding to the data section at offset " +
                           Twine(dataStart) + " (alignment " +
                           Twine(F.Alignment) + "), found end of file" +
                           (left() ? " after " + bytesLeft(left()) : ""));
    F.DataOffset = dataStart;
    const uint64_t room = size - dataStart;
    for (size_t i = 0; i < F.Tensors.size(); ++i) {
      const TensorInfo &t = F.Tensors[i];
      if (t.offset > room || t.nbytes > room - t.offset)
        return fail(OffsetFieldPos[i],
                    "data of tensor '" + t.name + "' (" + Twine(t.nbytes) +
                        " bytes at offset " + Twine(t.offset) +
                        " of the data section at " + Twine(dataStart) +
                        ") extends past the end of the file (" +
                        bytesLeft(size) + ")");
    }
    std::vector<uint32_t> order(F.Tensors.size());
    for (uint32_t i = 0; i < order.size(); ++i)
      order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
      return F.Tensors[a].offset < F.Tensors[b].offset;
    });
    auto range = [&](const TensorInfo &t) {
      return "[" + std::to_string(dataStart + t.offset) + ", " +
             std::to_string(dataStart + t.offset + t.nbytes) + ")";
    };
    for (size_t k = 1; k < order.size(); ++k) {
      const TensorInfo &prev = F.Tensors[order[k - 1]];
      const TensorInfo &cur = F.Tensors[order[k]];
      if (prev.offset + prev.nbytes > cur.offset)
        return fail(OffsetFieldPos[order[k]],
                    "data of tensor '" + cur.name + "' at file bytes " +
                        range(cur) + " overlaps the data of tensor '" +
                        prev.name + "' at " + range(prev));
    }
    return Error::success();
  }
};

} // namespace moe::gguf
//===----------------------------------------------------------------------===//
// GgufFile
//===----------------------------------------------------------------------===//

struct GgufFile::Storage {
  std::unique_ptr<llvm::MemoryBuffer> buffer;
  std::optional<llvm::sys::fs::mapped_file_region> region;
};

GgufFile::~GgufFile() = default;

void GgufFile::releasePages(const void *p, size_t n) const {
  if (!Owner || !Owner->region || Bytes.empty())
    return;
  auto lo = std::max(reinterpret_cast<uintptr_t>(p), reinterpret_cast<uintptr_t>(Bytes.data()));
  auto hi = std::min(reinterpret_cast<uintptr_t>(p) + n,
                     reinterpret_cast<uintptr_t>(Bytes.data()) + Bytes.size());
  uintptr_t page = uintptr_t(llvm::sys::Process::getPageSizeEstimate());
  lo = (lo + page - 1) & ~(page - 1); // whole pages only: neighbours stay
  hi &= ~(page - 1);
  if (lo < hi)
    ::madvise(reinterpret_cast<void *>(lo), hi - lo, MADV_DONTNEED);
}

Expected<std::unique_ptr<GgufFile>>
GgufFile::parseOwned(std::unique_ptr<GgufFile> file) {
  Parser parser(*file);
  if (Error e = parser.run())
    return e;
  return file;
}

Expected<std::unique_ptr<GgufFile>> GgufFile::open(StringRef path) {
  auto fail = [&](const Twine &msg) { return makeError(path + ": " + msg); };
  Expected<llvm::sys::fs::file_t> fd =
      llvm::sys::fs::openNativeFileForRead(path);
  if (!fd)
    return fail(llvm::toString(fd.takeError()));
  auto closeFd = llvm::make_scope_exit([&] { llvm::sys::fs::closeFile(*fd); });
  llvm::sys::fs::file_status status;
  if (std::error_code ec = llvm::sys::fs::status(*fd, status))
    return fail(ec.message());
  if (status.type() != llvm::sys::fs::file_type::regular_file)
    return fail("not a regular file");
  const uint64_t size = status.getSize();

  std::unique_ptr<GgufFile> file(new GgufFile());
  file->Name = path.str();
  file->Owner = std::make_unique<Storage>();
  if (size > 0) { // mmap of length 0 is an error; an empty file is just short
    std::error_code ec;
    llvm::sys::fs::mapped_file_region region(
        *fd, llvm::sys::fs::mapped_file_region::readonly, size, 0, ec);
    if (ec)
      return fail("cannot map the file: " + ec.message());
    file->Bytes = ArrayRef<uint8_t>(
        reinterpret_cast<const uint8_t *>(region.const_data()), size);
    file->Owner->region.emplace(std::move(region));
  }
  return parseOwned(std::move(file));
}

Expected<std::unique_ptr<GgufFile>>
GgufFile::parse(std::unique_ptr<llvm::MemoryBuffer> buffer) {
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->Name = buffer->getBufferIdentifier().str();
  file->Bytes = ArrayRef<uint8_t>(
      reinterpret_cast<const uint8_t *>(buffer->getBufferStart()),
      buffer->getBufferSize());
  file->Owner = std::make_unique<Storage>();
  file->Owner->buffer = std::move(buffer);
  return parseOwned(std::move(file));
}

Expected<std::unique_ptr<GgufFile>> GgufFile::parse(ArrayRef<uint8_t> bytes,
                                                    StringRef name) {
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->Name = name.str();
  file->Bytes = bytes;
  return parseOwned(std::move(file));
}

const TensorInfo *GgufFile::findTensor(StringRef name) const {
  auto it = TensorIndex.find(name);
  return it == TensorIndex.end() ? nullptr : &Tensors[it->second];
}

Expected<const TensorInfo &> GgufFile::tensor(StringRef name) const {
  if (const TensorInfo *t = findTensor(name))
    return *t;
  return makeError(Name + ": no tensor named '" + name + "'");
}

ArrayRef<uint8_t> GgufFile::tensorBytes(const TensorInfo &t) const {
  return Bytes.slice(DataOffset + t.offset, t.nbytes);
}

Expected<ArrayRef<uint8_t>> GgufFile::tensorData(StringRef name,
                                                 bool requireSupported) const {
  Expected<const TensorInfo &> t = tensor(name);
  if (!t)
    return t.takeError();
  if (requireSupported && !ggmlTypeTraits(t->type).supportedByMoe)
    return makeError(Name + ": unsupported tensor type " + t->typeName() +
                     " in tensor '" + name + "' (moe uses " +
                     moeSupportedTypesList() + " as stored)");
  return tensorBytes(*t);
}

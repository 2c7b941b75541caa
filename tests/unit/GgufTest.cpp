//===- GgufTest.cpp - GGUF reading and writing ----------------------------===//
//
// Round trips through io/GgufWriter and io/Gguf: every metadata value type,
// tensors of every moe type (and some others), GGUF v2 and v3, alignments;
// tensor data that points into the file's mapping; the typed getters' errors;
// ggml's type table. Then robustness: a valid file cut at every byte offset,
// and single bytes, fields and random bytes of the header region changed,
// each parsed from a buffer of exactly its size (so ASan sees any read past
// it): an error or a consistent file, never a crash. The corpus of malformed
// files with their exact messages is tests/gguf/bad, checked by lit
// (tests/lit/gguf).
//
//===----------------------------------------------------------------------===//
#include "io/Gguf.h"
#include "io/GgufDump.h"
#include "io/GgufWriter.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

using namespace moe::gguf;

namespace {

std::vector<uint8_t> toVector(const std::string &s) {
  return std::vector<uint8_t>(s.begin(), s.end());
}

/// Parses `bytes` from a heap buffer of exactly their size.
llvm::Expected<std::unique_ptr<GgufFile>>
parseBytes(const std::vector<uint8_t> &bytes) {
  return GgufFile::parse(bytes, "t.gguf");
}

std::string errorOf(llvm::Error e) { return llvm::toString(std::move(e)); }

template <typename T> std::string errorOf(llvm::Expected<T> e) {
  if (e)
    return "";
  return llvm::toString(e.takeError());
}

/// Deterministic bytes for a tensor of n bytes.
std::vector<uint8_t> pattern(size_t n, unsigned seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = static_cast<uint8_t>((i * 131 + seed * 17 + 7) % 251);
  return v;
}

uint64_t byteSize(GgmlType t, llvm::ArrayRef<int64_t> ne) {
  GgmlTypeTraits tr = ggmlTypeTraits(t);
  uint64_t n = ne[0] / tr.blockElems * tr.blockBytes;
  for (size_t i = 1; i < ne.size(); ++i)
    n *= ne[i];
  return n;
}

struct TensorSpec {
  const char *name;
  GgmlType type;
  std::vector<int64_t> ne;
};

const std::vector<TensorSpec> &tensorSpecs() {
  static const std::vector<TensorSpec> specs = {
      {"w.f32", GgmlType::F32, {5, 3}},
      {"w.f16", GgmlType::F16, {7}},
      {"w.bf16", GgmlType::BF16, {4, 2, 3}},
      {"blk.0.ffn_up_exps.weight", GgmlType::Q8_0, {64, 3, 2}},
      {"w.q4_0", GgmlType::Q4_0, {32, 5}},
      {"w.mxfp4", GgmlType::MXFP4, {96, 1, 1, 2}},
      {"w.q4_K", GgmlType::Q4_K, {256, 2}},
      {"w.i32", GgmlType::I32, {3}},
  };
  return specs;
}

/// A writer holding every metadata type and every tensor of tensorSpecs().
GgufWriter fullWriter(uint32_t version, uint32_t alignment = 32) {
  GgufWriter w(version);
  w.addString("general.architecture", "qwen3moe");
  if (alignment != 32)
    w.setAlignment(alignment);
  w.add("v.u8", MetaValue::u8(200));
  w.add("v.i8", MetaValue::i8(-100));
  w.add("v.u16", MetaValue::u16(60000));
  w.add("v.i16", MetaValue::i16(-30000));
  w.add("v.u32", MetaValue::u32(4000000000u));
  w.add("v.i32", MetaValue::i32(-2000000000));
  w.add("v.f32", MetaValue::f32(1e-6f));
  w.add("v.bool", MetaValue::boolean(true));
  w.add("v.string", MetaValue::string("caf\xc3\xa9 \"x\""));
  w.add("v.u64", MetaValue::u64(std::numeric_limits<uint64_t>::max()));
  w.add("v.i64", MetaValue::i64(std::numeric_limits<int64_t>::min()));
  w.add("v.f64", MetaValue::f64(-2.5e300));
  w.add("v.empty", MetaValue::array(ValueType::U32, {}));
  w.add("v.u32s", MetaValue::u32Array({1, 2, 3}));
  w.add("v.i32s", MetaValue::i32Array({-1, 0, 7}));
  w.add("v.f32s", MetaValue::f32Array({0.5f, -1.25f}));
  w.add("v.strings", MetaValue::stringArray({"<s>", "", "hello"}));
  w.add("v.bools",
        MetaValue::array(ValueType::Bool, {MetaValue::boolean(false),
                                           MetaValue::boolean(true)}));
  w.add("v.nested",
        MetaValue::array(
            ValueType::Array,
            {MetaValue::u32Array({4, 5}), MetaValue::stringArray({"a", "b"}),
             MetaValue::array(ValueType::Array, {MetaValue::i32Array({-9})})}));
  w.add("v.u64s",
        MetaValue::array(ValueType::U64, {MetaValue::u64(1ull << 40)}));
  w.add("qwen3moe.expert_count", MetaValue::u32(128));
  for (size_t i = 0; i < tensorSpecs().size(); ++i) {
    const TensorSpec &s = tensorSpecs()[i];
    llvm::Error e =
        w.addTensor(s.name, s.type, s.ne, pattern(byteSize(s.type, s.ne), i));
    EXPECT_FALSE(e) << llvm::toString(std::move(e));
  }
  return w;
}

class GgufVersionTest : public testing::TestWithParam<uint32_t> {};

TEST_P(GgufVersionTest, RoundTripsEveryMetadataType) {
  std::vector<uint8_t> bytes = toVector(fullWriter(GetParam()).bytes());
  auto f = parseBytes(bytes);
  ASSERT_TRUE(!!f) << llvm::toString(f.takeError());
  const GgufFile &file = **f;
  EXPECT_EQ(file.version(), GetParam());
  EXPECT_EQ(file.alignment(), 32u);
  EXPECT_EQ(file.metadata().size(), 22u);
  EXPECT_EQ(file.metadata()[0].key, "general.architecture");
  EXPECT_EQ(file.metadata()[0].offset, 24u);

  EXPECT_EQ(*file.getString("general.architecture"), "qwen3moe");
  EXPECT_EQ(*file.getU8("v.u8"), 200);
  EXPECT_EQ(*file.getI32("v.i8"), -100);
  EXPECT_EQ(*file.getU32("v.u16"), 60000u);
  EXPECT_EQ(*file.getI64("v.i16"), -30000);
  EXPECT_EQ(*file.getU32("v.u32"), 4000000000u);
  EXPECT_EQ(*file.getI32("v.i32"), -2000000000);
  EXPECT_EQ(*file.getF32("v.f32"), 1e-6f);
  EXPECT_EQ(*file.getBool("v.bool"), true);
  EXPECT_EQ(*file.getString("v.string"), "caf\xc3\xa9 \"x\"");
  EXPECT_EQ(*file.getU64("v.u64"), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(*file.getI64("v.i64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(*file.getF64("v.f64"), -2.5e300);
  EXPECT_EQ(file.find("v.f64")->type(), ValueType::F64);

  EXPECT_TRUE(file.getIntArray("v.empty")->empty());
  EXPECT_EQ(*file.getIntArray("v.u32s"), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(*file.getIntArray("v.i32s"), (std::vector<int64_t>{-1, 0, 7}));
  EXPECT_EQ(*file.getIntArray("v.u64s"), (std::vector<int64_t>{1ll << 40}));
  EXPECT_EQ(*file.getFloatArray("v.f32s"), (std::vector<double>{0.5, -1.25}));
  std::vector<llvm::StringRef> strings = *file.getStringArray("v.strings");
  ASSERT_EQ(strings.size(), 3u);
  EXPECT_EQ(strings[0], "<s>");
  EXPECT_EQ(strings[1], "");
  EXPECT_EQ(strings[2], "hello");

  const Value *bools = file.find("v.bools");
  ASSERT_TRUE(bools);
  EXPECT_EQ(bools->elementType(), ValueType::Bool);
  EXPECT_EQ(bools->element(0).asBool(), false);
  EXPECT_EQ(bools->element(1).asBool(), true);

  const Value *nested = file.find("v.nested");
  ASSERT_TRUE(nested);
  EXPECT_EQ(nested->describe(), "an array of array");
  ASSERT_EQ(nested->size(), 3u);
  std::vector<Value> outer = nested->elements();
  EXPECT_EQ(outer[0].elementType(), ValueType::U32);
  EXPECT_EQ(outer[0].element(1).asUnsigned(), 5u);
  EXPECT_EQ(outer[1].element(1).asString(), llvm::StringRef("b"));
  EXPECT_EQ(nested->element(2).element(0).element(0).asSigned(), -9);
  // element() on a variable-size array walks; it agrees with elements().
  EXPECT_EQ(nested->element(1).element(0).asString(), llvm::StringRef("a"));

  // Strings and scalar arrays are views of the file's bytes.
  llvm::StringRef arch = *file.getString("general.architecture");
  EXPECT_GE(reinterpret_cast<const uint8_t *>(arch.data()), bytes.data());
  EXPECT_LT(reinterpret_cast<const uint8_t *>(arch.data()),
            bytes.data() + bytes.size());
  EXPECT_EQ(file.find("v.u32s")->rawElements().size(), 12u);
}

TEST_P(GgufVersionTest, RoundTripsTensorsOfEachType) {
  std::vector<uint8_t> bytes = toVector(fullWriter(GetParam()).bytes());
  auto f = parseBytes(bytes);
  ASSERT_TRUE(!!f) << llvm::toString(f.takeError());
  const GgufFile &file = **f;
  ASSERT_EQ(file.tensors().size(), tensorSpecs().size());
  EXPECT_EQ(file.dataOffset() % 32, 0u);
  for (size_t i = 0; i < tensorSpecs().size(); ++i) {
    const TensorSpec &s = tensorSpecs()[i];
    const TensorInfo &t = file.tensors()[i];
    SCOPED_TRACE(s.name);
    EXPECT_EQ(t.name, s.name);
    EXPECT_EQ(t.type, s.type);
    EXPECT_EQ(t.nDims, s.ne.size());
    EXPECT_EQ(std::vector<int64_t>(t.neDims().begin(), t.neDims().end()), s.ne);
    std::vector<int64_t> reversed(s.ne.rbegin(), s.ne.rend());
    llvm::SmallVector<int64_t, 4> dims = t.dims();
    EXPECT_EQ(std::vector<int64_t>(dims.begin(), dims.end()), reversed);
    EXPECT_EQ(t.nbytes, byteSize(s.type, s.ne));
    EXPECT_EQ(t.offset % 32, 0u);
    llvm::ArrayRef<uint8_t> data = file.tensorBytes(t);
    EXPECT_EQ(std::vector<uint8_t>(data.begin(), data.end()),
              pattern(t.nbytes, i));
    // A view into the parsed bytes, where the offsets say.
    EXPECT_EQ(data.data(), bytes.data() + file.dataOffset() + t.offset);
  }
  int64_t elems = 1;
  for (int64_t n : tensorSpecs()[3].ne)
    elems *= n;
  EXPECT_EQ(file.tensors()[3].numElements(), elems);
}

INSTANTIATE_TEST_SUITE_P(Versions, GgufVersionTest, testing::Values(2u, 3u));

TEST(Gguf, AlignmentPadsTheDataSection) {
  for (uint32_t a : {1u, 8u, 64u, 4096u}) {
    SCOPED_TRACE(a);
    std::vector<uint8_t> bytes = toVector(fullWriter(3, a).bytes());
    auto f = parseBytes(bytes);
    ASSERT_TRUE(!!f) << llvm::toString(f.takeError());
    EXPECT_EQ((*f)->alignment(), a);
    EXPECT_EQ(*(*f)->getU32("general.alignment"), a);
    EXPECT_EQ((*f)->dataOffset() % a, 0u);
    for (const TensorInfo &t : (*f)->tensors())
      EXPECT_EQ(t.offset % a, 0u) << t.name.str();
  }
}

TEST(Gguf, NoTensorsNeedsNoDataSection) {
  GgufWriter w;
  w.addU32("a", 1);
  std::vector<uint8_t> bytes = toVector(w.bytes());
  auto f = parseBytes(bytes);
  ASSERT_TRUE(!!f) << llvm::toString(f.takeError());
  EXPECT_TRUE((*f)->tensors().empty());
  EXPECT_EQ((*f)->dataOffset(), bytes.size());
}

/// A temporary file holding `bytes`, removed at the end of the scope.
struct TempFile {
  llvm::SmallString<128> path;
  explicit TempFile(const std::string &bytes) {
    EXPECT_FALSE(
        llvm::sys::fs::createTemporaryFile("moe-gguf-test", "gguf", path));
    std::ofstream(path.c_str(), std::ios::binary) << bytes;
  }
  ~TempFile() { llvm::sys::fs::remove(path); }
};

TEST(Gguf, TensorDataPointsIntoTheMapping) {
  GgufWriter w;
  w.setAlignment(64);
  std::vector<uint8_t> big =
      pattern(64 * 1024, 3); // past MemoryBuffer's mmap threshold too
  ASSERT_FALSE(w.addTensor("big", GgmlType::F32, {128, 128}, big));
  ASSERT_FALSE(w.addTensor("small", GgmlType::Q8_0, {32}, pattern(34, 4)));
  TempFile tmp(w.bytes());
  auto f = GgufFile::open(tmp.path);
  ASSERT_TRUE(!!f) << llvm::toString(f.takeError());
  const GgufFile &file = **f;
  EXPECT_EQ(file.name(), tmp.path.str());
  for (const char *name : {"big", "small"}) {
    auto data = file.tensorData(name);
    ASSERT_TRUE(!!data) << llvm::toString(data.takeError());
    const TensorInfo &t = *file.findTensor(name);
    EXPECT_EQ(data->data(), file.bytes().data() + file.dataOffset() + t.offset);
    // The mapping is page-aligned, so the file's alignment carries over.
    EXPECT_EQ(reinterpret_cast<uintptr_t>(data->data()) % 64, 0u);
  }
  llvm::ArrayRef<uint8_t> bigData = *file.tensorData("big");
  EXPECT_EQ(std::vector<uint8_t>(bigData.begin(), bigData.end()), big);
#ifdef __linux__
  // The bytes are the kernel's mapping of the file itself, not a copy.
  std::ifstream maps("/proc/self/maps");
  std::string line;
  bool found = false;
  const uintptr_t p =
      reinterpret_cast<uintptr_t>(file.tensorData("big")->data());
  llvm::SmallString<128> real;
  llvm::sys::fs::real_path(tmp.path, real);
  while (std::getline(maps, line)) {
    if (line.find(real.str().str()) == std::string::npos)
      continue;
    uintptr_t lo = 0, hi = 0;
    std::sscanf(line.c_str(), "%lx-%lx", &lo, &hi);
    found |= lo <= p && p < hi;
  }
  EXPECT_TRUE(found) << "no mapping of " << real.str().str()
                     << " holds the data";
#endif
}

TEST(Gguf, OpenErrorsNameTheFile) {
  EXPECT_EQ(errorOf(GgufFile::open("/nonexistent/x.gguf")),
            "/nonexistent/x.gguf: No such file or directory");
  TempFile empty("");
  EXPECT_EQ(errorOf(GgufFile::open(empty.path)),
            empty.path.str().str() + ": offset 0: expected the magic \"GGUF\" "
                                     "(4 bytes), found end of file");
}

TEST(Gguf, TypedGetterErrorsNameTheKey) {
  GgufWriter w;
  w.addString("qwen3moe.expert_count", "128");
  w.add("big", MetaValue::u64(1ull << 40));
  w.add("neg", MetaValue::i8(-1));
  w.add("huge", MetaValue::u64(std::numeric_limits<uint64_t>::max()));
  w.add("small", MetaValue::u8(7));
  w.add("f", MetaValue::f32(2.0f));
  w.add("strs", MetaValue::stringArray({"a"}));
  w.add("ints", MetaValue::u32Array({1}));
  w.add("u64s", MetaValue::array(ValueType::U64, {MetaValue::u64(1ull << 63)}));
  std::vector<uint8_t> bytes = toVector(w.bytes());
  auto f = parseBytes(bytes);
  ASSERT_TRUE(!!f) << llvm::toString(f.takeError());
  const GgufFile &file = **f;

  EXPECT_EQ(
      errorOf(file.getU32("qwen3moe.expert_count")),
      "t.gguf: key 'qwen3moe.expert_count' is a string, expected an integer");
  EXPECT_EQ(errorOf(file.getU32("nope")), "t.gguf: missing key 'nope'");
  EXPECT_EQ(errorOf(file.getU32("big")),
            "t.gguf: key 'big' has value 1099511627776, which does not fit in "
            "uint32");
  EXPECT_EQ(errorOf(file.getU64("neg")),
            "t.gguf: key 'neg' has value -1, which does not fit in uint64");
  EXPECT_EQ(errorOf(file.getI64("huge")),
            "t.gguf: key 'huge' has value 18446744073709551615, which does not "
            "fit in int64");
  EXPECT_EQ(errorOf(file.getF32("small")),
            "t.gguf: key 'small' is a uint8, expected a float");
  EXPECT_EQ(errorOf(file.getBool("f")),
            "t.gguf: key 'f' is a float32, expected a bool");
  EXPECT_EQ(errorOf(file.getString("ints")),
            "t.gguf: key 'ints' is an array of uint32, expected a string");
  EXPECT_EQ(errorOf(file.getIntArray("strs")),
            "t.gguf: key 'strs' is an array of string, expected an array of "
            "integers");
  EXPECT_EQ(errorOf(file.getStringArray("small")),
            "t.gguf: key 'small' is a uint8, expected an array of strings");
  EXPECT_EQ(
      errorOf(file.getFloatArray("ints")),
      "t.gguf: key 'ints' is an array of uint32, expected an array of floats");
  EXPECT_EQ(errorOf(file.getIntArray("u64s")),
            "t.gguf: key 'u64s' has element 0 = 9223372036854775808, which "
            "does not fit in int64");

  // Any integer type whose value fits.
  EXPECT_EQ(*file.getU32("small"), 7u);
  EXPECT_EQ(*file.getI32("small"), 7);
  EXPECT_EQ(*file.getU8("small"), 7);
  EXPECT_EQ(*file.getI64("big"), 1ll << 40);
  EXPECT_EQ(*file.getI32("neg"), -1);
  EXPECT_EQ(*file.getF64("f"), 2.0);
}

TEST(Gguf, UnsupportedTypesFailOnlyWhenUsed) {
  std::vector<uint8_t> bytes = toVector(fullWriter(3).bytes());
  auto f = parseBytes(bytes);
  ASSERT_TRUE(!!f) << llvm::toString(f.takeError());
  EXPECT_EQ(errorOf((*f)->tensorData("w.q4_K")),
            "t.gguf: unsupported tensor type q4_K in tensor 'w.q4_K' (moe uses "
            "f32, f16, q4_0, q8_0, bf16, mxfp4 as stored)");
  EXPECT_EQ(errorOf((*f)->tensorData("w.i32")),
            "t.gguf: unsupported tensor type i32 in tensor 'w.i32' (moe uses "
            "f32, f16, q4_0, q8_0, bf16, mxfp4 as stored)");
  EXPECT_TRUE(!!(*f)->tensorData("w.q4_K", /*requireSupported=*/false));
  for (const char *ok : {"w.f32", "w.f16", "w.bf16", "blk.0.ffn_up_exps.weight",
                         "w.q4_0", "w.mxfp4"})
    EXPECT_TRUE(!!(*f)->tensorData(ok)) << ok;
  EXPECT_EQ(errorOf((*f)->tensorData("absent")),
            "t.gguf: no tensor named 'absent'");
}

TEST(Gguf, GgmlTypeTable) {
  struct Expect {
    uint32_t id;
    const char *name;
    uint32_t blockElems, blockBytes;
    bool supported;
  };
  for (Expect e : std::vector<Expect>{{0, "f32", 1, 4, true},
                                      {1, "f16", 1, 2, true},
                                      {2, "q4_0", 32, 18, true},
                                      {8, "q8_0", 32, 34, true},
                                      {9, "q8_1", 32, 36, false},
                                      {12, "q4_K", 256, 144, false},
                                      {14, "q6_K", 256, 210, false},
                                      {23, "iq4_xs", 256, 136, false},
                                      {24, "i8", 1, 1, false},
                                      {28, "f64", 1, 8, false},
                                      {30, "bf16", 1, 2, true},
                                      {35, "tq2_0", 256, 66, false},
                                      {39, "mxfp4", 32, 17, true}}) {
    std::optional<GgmlTypeTraits> t = ggmlTypeTraits(e.id);
    ASSERT_TRUE(t.has_value()) << e.id;
    EXPECT_EQ(t->name, e.name);
    EXPECT_EQ(t->blockElems, e.blockElems) << e.name;
    EXPECT_EQ(t->blockBytes, e.blockBytes) << e.name;
    EXPECT_EQ(t->supportedByMoe, e.supported) << e.name;
    EXPECT_EQ(parseGgmlType(e.name), t->type);
  }
  for (uint32_t removed : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u, 41u, 1000u})
    EXPECT_FALSE(ggmlTypeTraits(removed).has_value()) << removed;
}

TEST(Gguf, WriterRejectsInconsistentTensors) {
  GgufWriter w;
  EXPECT_EQ(errorOf(w.addTensor("a", GgmlType::Q8_0, {33}, pattern(34, 0))),
            "tensor 'a': ne[0] is not a multiple of the block size");
  EXPECT_EQ(errorOf(w.addTensor("a", GgmlType::F32, {2}, pattern(4, 0))),
            "tensor 'a': expected 8 bytes of data, got 4");
  EXPECT_FALSE(w.addTensor("a", GgmlType::F32, {2}, pattern(8, 0)));
  EXPECT_EQ(errorOf(w.addTensor("a", GgmlType::F32, {2}, pattern(8, 0))),
            "tensor 'a': a tensor of this name was already added");
}

/// Walks everything a parsed file exposes, so the sanitizers see every
/// accessor run on whatever the parser accepted.
size_t exercise(const GgufFile &file) {
  std::string text;
  llvm::raw_string_ostream os(text);
  dump(os, file);
  size_t sum = text.size();
  for (const KeyValue &kv : file.metadata())
    if (kv.value.isArray())
      for (const Value &e : kv.value.elements())
        sum += e.describe().size();
  for (const TensorInfo &t : file.tensors()) {
    llvm::ArrayRef<uint8_t> data = file.tensorBytes(t);
    if (!data.empty())
      sum += data.front() + data.back();
    sum += static_cast<size_t>(t.numElements() & 0xFF);
  }
  return sum;
}

TEST(GgufRobustness, EveryTruncationIsAnError) {
  const std::string whole = fullWriter(3).bytes();
  const std::vector<uint8_t> original = toVector(whole);
  auto full = parseBytes(original);
  ASSERT_TRUE(!!full);
  // Up to the end of the last tensor's data every cut is an error; only the
  // writer's padding after it may go.
  uint64_t dataEnd = 0;
  for (const TensorInfo &t : (*full)->tensors())
    dataEnd = std::max(dataEnd, (*full)->dataOffset() + t.offset + t.nbytes);
  ASSERT_LT(dataEnd, whole.size());
  for (size_t n = 0; n < whole.size(); ++n) {
    std::vector<uint8_t> bytes(whole.begin(), whole.begin() + n);
    auto f = parseBytes(bytes);
    if (n >= dataEnd) {
      EXPECT_TRUE(!!f) << "a file cut in its final padding, to " << n
                       << " bytes";
      if (!f)
        llvm::consumeError(f.takeError());
      continue;
    }
    ASSERT_FALSE(!!f) << "a file cut to " << n << " bytes parsed";
    std::string msg = llvm::toString(f.takeError());
    EXPECT_EQ(msg.rfind("t.gguf: offset ", 0), 0u) << msg;
  }
}

TEST(GgufRobustness, ChangedHeaderBytesNeverCrash) {
  const std::string whole = fullWriter(3).bytes();
  const std::vector<uint8_t> original = toVector(whole);
  auto f = parseBytes(original);
  ASSERT_TRUE(!!f);
  const size_t headerEnd = (*f)->dataOffset();
  size_t parsed = 0, failed = 0;
  for (size_t i = 0; i < headerEnd; ++i) {
    for (uint8_t mask : {0x01, 0x10, 0x80, 0xFF}) {
      std::vector<uint8_t> bytes = toVector(whole);
      bytes[i] ^= mask;
      auto g = parseBytes(bytes);
      if (g) {
        ++parsed;
        exercise(**g);
      } else {
        ++failed;
        std::string msg = llvm::toString(g.takeError());
        EXPECT_EQ(msg.rfind("t.gguf: offset ", 0), 0u) << msg;
      }
    }
  }
  EXPECT_GT(parsed, 0u); // flips inside strings and values still parse
  EXPECT_GT(failed, 0u);
}

TEST(GgufRobustness, ExtremeFieldValuesNeverCrash) {
  // Every 4- and 8-byte window of the header region set to values that
  // stress bounds and overflow checks.
  const std::string whole = fullWriter(3, 64).bytes();
  const std::vector<uint8_t> original = toVector(whole);
  auto f = parseBytes(original);
  ASSERT_TRUE(!!f);
  const size_t headerEnd = (*f)->dataOffset();
  const uint64_t values[] = {0,          1,          0x7F,       0xFFFFFFFFull,
                             1ull << 31, 1ull << 32, 1ull << 62, 1ull << 63,
                             ~0ull,      ~0ull - 31};
  for (size_t i = 0; i + 4 <= headerEnd; ++i)
    for (uint64_t v : values)
      for (size_t width : {4u, 8u}) {
        if (i + width > whole.size())
          continue;
        std::vector<uint8_t> bytes = toVector(whole);
        std::memcpy(bytes.data() + i, &v, width);
        auto g = parseBytes(bytes);
        if (g)
          exercise(**g);
        else
          llvm::consumeError(g.takeError());
      }
}

TEST(GgufRobustness, RandomHeaderMutationsNeverCrash) {
  const std::string whole = fullWriter(2).bytes();
  const std::vector<uint8_t> original = toVector(whole);
  auto f = parseBytes(original);
  ASSERT_TRUE(!!f);
  const size_t headerEnd = (*f)->dataOffset();
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<uint8_t> bytes = toVector(whole);
    const int changes = 1 + next() % 4;
    for (int c = 0; c < changes; ++c)
      bytes[next() % headerEnd] = static_cast<uint8_t>(next());
    if (next() % 4 == 0)
      bytes.resize(next() % bytes.size());
    auto g = parseBytes(bytes);
    if (g)
      exercise(**g);
    else
      llvm::consumeError(g.takeError());
  }
}

} // namespace

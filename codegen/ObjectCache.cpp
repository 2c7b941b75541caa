//===- ObjectCache.cpp - Compiled kernels on disk, by key -----------------===//
//
// See ObjectCache.h.
//
//===----------------------------------------------------------------------===//
#include "codegen/ObjectCache.h"

#include "llvm/Bitcode/BitcodeWriter.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/Object/ObjectFile.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Support/xxhash.h"

#include "fmt/format.h"

#include <cstring>

using namespace moe;
using namespace moe::codegen;

/// Bumped whenever the kernels' ABI or code generation changes meaning.
static constexpr const char *kCodegenVersion = "moe-codegen-2";
static constexpr char kTrailerMagic[8] = {'M', 'O', 'E', 'O', 'B', 'J', '1', '\0'};
/// Several objects (a program compiled in parts): each as a little-endian
/// u64 size and its bytes, then this trailer.
static constexpr char kPartsMagic[8] = {'M', 'O', 'E', 'O', 'B', 'J', '2', '\0'};

std::string ObjectCache::keyOf(const llvm::Module &m, llvm::StringRef target) {
  llvm::SmallVector<char, 0> ir;
  llvm::raw_svector_ostream os(ir);
  llvm::WriteBitcodeToFile(m, os);
  os << kCodegenVersion << LLVM_VERSION_STRING << target;
  return fmt::format("{:016x}", llvm::xxh3_64bits(llvm::StringRef(ir.data(), ir.size())));
}

std::string ObjectCache::pathOf(llvm::StringRef key) const {
  return dir + "/" + key.str() + ".o";
}

std::vector<std::unique_ptr<llvm::MemoryBuffer>> ObjectCache::load(llvm::StringRef key) const {
  std::string path = pathOf(key);
  auto buf = llvm::MemoryBuffer::getFile(path, /*IsText=*/false, /*RequiresNullTerminator=*/false);
  if (!buf) {
    if (buf.getError() != std::errc::no_such_file_or_directory)
      warn(fmt::format("cannot read {} ({})", path, buf.getError().message()));
    return {};
  }
  llvm::StringRef all = (*buf)->getBuffer();
  bool parts = all.size() >= 16 && std::memcmp(all.data() + all.size() - 16, kPartsMagic, 8) == 0;
  if (all.size() < 16 ||
      (!parts && std::memcmp(all.data() + all.size() - 16, kTrailerMagic, 8) != 0)) {
    warn(fmt::format("{} is not a moe cache object; recompiling", path));
    return {};
  }
  llvm::StringRef payload = all.drop_back(16);
  uint64_t h;
  std::memcpy(&h, all.data() + all.size() - 8, 8);
  if (llvm::xxh3_64bits(payload) != h) {
    warn(fmt::format("{} is corrupt (checksum mismatch); recompiling", path));
    return {};
  }
  std::vector<llvm::StringRef> objects;
  if (!parts) {
    objects.push_back(payload);
  } else {
    for (llvm::StringRef rest = payload; !rest.empty();) {
      uint64_t n;
      if (rest.size() < 8 || (std::memcpy(&n, rest.data(), 8), n > rest.size() - 8)) {
        warn(fmt::format("{} is corrupt (a part's size is past its end); recompiling", path));
        return {};
      }
      objects.push_back(rest.substr(8, n));
      rest = rest.drop_front(8 + n);
    }
  }
  std::vector<std::unique_ptr<llvm::MemoryBuffer>> out;
  for (llvm::StringRef obj : objects) {
    auto parsed = llvm::object::ObjectFile::createObjectFile(llvm::MemoryBufferRef(obj, path));
    if (!parsed) {
      warn(fmt::format("{} is corrupt ({}); recompiling", path, llvm::toString(parsed.takeError())));
      return {};
    }
    out.push_back(llvm::MemoryBuffer::getMemBufferCopy(obj, path));
  }
  return out;
}

void ObjectCache::store(llvm::StringRef key, llvm::ArrayRef<llvm::StringRef> objects) const {
  if (auto ec = llvm::sys::fs::create_directories(dir)) {
    warn(fmt::format("object cache {} is not usable ({}); continuing without it", dir,
                     ec.message()));
    return;
  }
  std::string path = pathOf(key);
  llvm::SmallString<128> tmp;
  int fd;
  if (auto ec = llvm::sys::fs::createUniqueFile(path + ".tmp-%%%%%%", fd, tmp)) {
    warn(fmt::format("cannot write to the object cache {} ({}); continuing without it", dir,
                     ec.message()));
    return;
  }
  {
    llvm::raw_fd_ostream os(fd, /*shouldClose=*/true);
    std::string payload;
    if (objects.size() == 1) {
      payload = objects[0].str();
    } else {
      for (llvm::StringRef obj : objects) {
        uint64_t n = obj.size();
        payload.append(reinterpret_cast<const char *>(&n), 8);
        payload.append(obj.data(), obj.size());
      }
    }
    uint64_t h = llvm::xxh3_64bits(llvm::StringRef(payload));
    os << payload;
    os.write(objects.size() == 1 ? kTrailerMagic : kPartsMagic, 8);
    os.write(reinterpret_cast<const char *>(&h), 8);
    os.close();
    if (os.has_error()) {
      warn(fmt::format("cannot write {} ({}); continuing without it", tmp.str().str(),
                       os.error().message()));
      os.clear_error();
      llvm::sys::fs::remove(tmp);
      return;
    }
  }
  if (auto ec = llvm::sys::fs::rename(tmp, path)) {
    warn(fmt::format("cannot write {} ({})", path, ec.message()));
    llvm::sys::fs::remove(tmp);
  }
}

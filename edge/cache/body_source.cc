#include "edge/cache/body_source.h"

namespace tern::edge::cache {
namespace {

class StringSource final : public BodySource {
 public:
  explicit StringSource(std::string body) : body_(std::move(body)) {}
  void next(std::function<void(Result<std::string_view>)> done) override {
    if (sent_) return done(std::string_view());
    sent_ = true;
    done(std::string_view(body_));
  }
  std::optional<Result<std::string_view>> tryNext() override {
    if (sent_) return Result<std::string_view>(std::string_view());
    sent_ = true;
    return Result<std::string_view>(std::string_view(body_));
  }

 private:
  std::string body_;
  bool sent_ = false;
};

class StoredSource final : public BodySource {
 public:
  StoredSource(std::unique_ptr<storage::BodyReader> reader, bool blocking, Executor loop,
               Executor pool)
      : owned_(std::move(reader)),
        blocking_(blocking),
        loop_(std::move(loop)),
        pool_(std::move(pool)) {}
  void next(std::function<void(Result<std::string_view>)> done) override {
    if (owned_ && (!blocking_ || owned_->nextIsInMemory())) return done(owned_->next());
    // The reader (and the buffer its view points into) outlives this object
    // while a read is on the pool; the view stays valid until the next call,
    // which only comes after `done` ran: no copy. (Shared from the first
    // read that needs the pool: a body in memory costs no shared owner.)
    if (owned_) reader_ = std::move(owned_);
    if (!blocking_ || reader_->nextIsInMemory()) return done(reader_->next());
    auto reader = reader_;
    Executor loop = loop_;
    pool_([reader, loop, done = std::move(done)]() mutable {
      auto r = reader->next();
      loop([reader, r = std::move(r), done = std::move(done)]() mutable { done(std::move(r)); });
    });
  }
  std::optional<Result<std::string_view>> tryNext() override {
    storage::BodyReader* r = owned_ ? owned_.get() : reader_.get();
    if (blocking_ && !r->nextIsInMemory()) return std::nullopt;
    return r->next();
  }
  bool takeFile(storage::FileRegion* out) override {
    return (owned_ ? owned_.get() : reader_.get())->takeFile(out);
  }

 private:
  std::unique_ptr<storage::BodyReader> owned_;   // until a read goes to the pool
  std::shared_ptr<storage::BodyReader> reader_;  // from then on
  bool blocking_;
  Executor loop_, pool_;
};

// A reader whose first chunk was read ahead (on the thread that looked the
// object up), so that serving it takes no further hand-off.
class ReadAheadReader final : public storage::BodyReader {
 public:
  ReadAheadReader(std::unique_ptr<storage::BodyReader> inner, std::string_view first)
      : inner_(std::move(inner)), first_(first) {}
  Result<std::string_view> next() override {
    if (!first_taken_) {
      first_taken_ = true;
      return first_;
    }
    return inner_->next();
  }
  bool nextIsInMemory() const override { return !first_taken_ || inner_->nextIsInMemory(); }

 private:
  std::unique_ptr<storage::BodyReader> inner_;
  std::string_view first_;  // into inner_'s buffer, valid until its next call
  bool first_taken_ = false;
};

class InflightSource final : public BodySource {
 public:
  InflightSource(Inflight::Reader reader, Executor loop)
      : shared_(std::make_shared<Shared>()), loop_(std::move(loop)) {
    shared_->inflight = reader.inflight()->shared_from_this();
    shared_->reader = std::move(reader);
    std::weak_ptr<Shared> weak = shared_;
    shared_->inflight->subscribe(loop_, [weak] {
      if (auto s = weak.lock()) s->poke();
    });
  }
  void next(std::function<void(Result<std::string_view>)> done) override {
    shared_->pending = std::move(done);
    shared_->poke();
  }

 private:
  struct Shared {
    std::shared_ptr<Inflight> inflight;
    Inflight::Reader reader;  // holds back what this client has not read yet
    std::function<void(Result<std::string_view>)> pending;
    std::shared_ptr<const std::string> current;
    size_t index = 0;
    void poke() {
      if (!pending) return;
      if (auto c = reader.chunk(index)) {
        ++index;
        current = c;
        auto cb = std::move(pending);
        pending = nullptr;
        cb(std::string_view(*current));
        return;
      }
      Status st;
      if (inflight->finished(&st) && reader.chunk(index) == nullptr) {
        auto cb = std::move(pending);
        pending = nullptr;
        reader.release();
        if (st.isOk()) {
          cb(std::string_view());
        } else {
          cb(st);
        }
      }
    }
  };
  std::shared_ptr<Shared> shared_;
  Executor loop_;
};

class RangeSource final : public BodySource {
 public:
  RangeSource(std::unique_ptr<BodySource> inner, uint64_t first, uint64_t last)
      : inner_(std::move(inner)), first_(first), last_(last) {}
  void next(std::function<void(Result<std::string_view>)> done) override {
    if (pos_ > last_) return done(std::string_view());
    inner_->next([this, done = std::move(done)](Result<std::string_view> r) mutable {
      if (!r.ok() || r->empty()) return done(std::move(r));
      std::string_view c = *r;
      uint64_t start = pos_, end = pos_ + c.size();  // [start, end)
      pos_ = end;
      if (end <= first_) return next(std::move(done));  // before the range: skip
      uint64_t from = std::max(start, first_) - start;
      uint64_t to = std::min(end, last_ + 1) - start;
      done(c.substr(from, to - from));
    });
  }
  // Untouched so far and the rest of the inner body in a file: the range of it.
  bool takeFile(storage::FileRegion* out) override {
    if (pos_ != 0 || !inner_->takeFile(out)) return false;
    if (first_ >= out->length) {  // (the range lies past the end: nothing)
      out->length = 0;
    } else {
      out->offset += first_;
      out->length = std::min(out->length - first_, last_ - first_ + 1);
    }
    pos_ = last_ + 1;
    return true;
  }

 private:
  std::unique_ptr<BodySource> inner_;
  uint64_t first_, last_;
  uint64_t pos_ = 0;
};

}  // namespace

std::unique_ptr<BodySource> stringSource(std::string body) {
  return std::make_unique<StringSource>(std::move(body));
}
Status readAhead(std::unique_ptr<storage::BodyReader>* reader) {
  // (A body that can be sent from its file is not read here at all.)
  if (!*reader || (*reader)->nextIsInMemory() || (*reader)->fileReady()) return Status::ok();
  auto first = (*reader)->next();
  if (!first.ok()) return first.status();
  *reader = std::make_unique<ReadAheadReader>(std::move(*reader), *first);
  return Status::ok();
}

std::unique_ptr<BodySource> storedSource(std::unique_ptr<storage::BodyReader> reader, bool blocking,
                                         Executor loop, Executor pool) {
  return std::make_unique<StoredSource>(std::move(reader), blocking, std::move(loop),
                                        std::move(pool));
}
std::unique_ptr<BodySource> inflightSource(Inflight::Reader reader, Executor loop) {
  return std::make_unique<InflightSource>(std::move(reader), std::move(loop));
}
std::unique_ptr<BodySource> rangeSource(std::unique_ptr<BodySource> inner, uint64_t first,
                                        uint64_t last) {
  return std::make_unique<RangeSource>(std::move(inner), first, last);
}

}  // namespace tern::edge::cache

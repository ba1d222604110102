// http_session and its body_stream over beast::test::stream: no process, no
// socket. The session runs unchanged; only its services are fakes: a route
// function with a few test endpoints, and a fake upload actor that records
// what the connection sends it and answers through the upload link.
//
// Covered: the keep-alive loop (answers in order, Connection: close, a body
// nobody read), the head limit (431), the head deadline (408 / silent
// close), a malformed head, refused framing (net/framing), 100 Continue
// (once, and never before a refusal), small bodies read whole, and upload
// bodies streamed under credit: eof, early answers while a read is pending,
// the body idle deadline, a client gone, a malformed chunked body.
//
// Synchronisation is "run the event loop until a condition, with a deadline".
#include "actors/messages.hpp"
#include "net/http_session_impl.hpp"
#include "net/metrics.hpp"

#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/json/parse.hpp>
#include <caf/all.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace portal {

// A test stream has no socket and no timeouts. It cannot cancel one read
// either: ending this side's input completes the pending read (and every
// later one) with eof, and the session's handlers decide from their own
// state what that means, as they do after a socket's cancel().
template <>
struct stream_transport<beast::test::stream> {
  static std::string peer_address(beast::test::stream&) { return "192.0.2.1"; }
  static void expires_after(beast::test::stream&, std::chrono::steady_clock::duration) {}
  static void expires_never(beast::test::stream&) {}
  static void cancel(beast::test::stream& s) { s.close_remote(); }
  static void shutdown_send(beast::test::stream& s) { s.close(); }
  static void close(beast::test::stream& s) { s.close(); }
};

template class http_session<beast::test::stream>;

} // namespace portal

using namespace portal;

namespace {

using grant_atom = caf::atom_constant<caf::atom("t_grant")>;
using marker_atom = caf::atom_constant<caf::atom("t_marker")>;

// What the fake upload actor heard.
struct upload_record {
  std::mutex mutex;
  std::vector<std::string> events; // "chunk", "eof", "abort"
  std::string bytes;
  std::size_t chunks = 0;

  void add(std::string event, const std::string& data = {}) {
    std::lock_guard<std::mutex> lock(mutex);
    if (event == "chunk")
      ++chunks;
    bytes += data;
    events.push_back(std::move(event));
  }
  std::vector<std::string> seen() {
    std::lock_guard<std::mutex> lock(mutex);
    return events;
  }
  // The latest event, "" before the first (a predicate polled before the
  // upload actor ran must not read past an empty list).
  std::string last() {
    std::lock_guard<std::mutex> lock(mutex);
    return events.empty() ? std::string{} : events.back();
  }
  std::string received() {
    std::lock_guard<std::mutex> lock(mutex);
    return bytes;
  }
};

enum class upload_mode {
  credit,      // one credit back per chunk, 201 at eof
  hold,        // credit only when granted (grant_atom, n)
  refuse_first // 415 on the first chunk, like a wrong magic number
};

caf::behavior fake_upload(caf::event_based_actor* self, upload_link_ptr link,
                          std::shared_ptr<upload_record> record, upload_mode mode) {
  return {
    [=](chunk_atom, const chunk_ptr& c) {
      record->add("chunk", std::string{c->data.get(), c->size});
      if (mode == upload_mode::refuse_first) {
        link->done(upload_answer{{error_code::unsupported_media_type, "test"}, {}, {}});
        return self->quit();
      }
      if (mode == upload_mode::credit)
        link->credit(1);
    },
    [=](grant_atom, std::size_t n) { link->credit(n); },
    // Messages sent from one thread arrive in order: once the marker is
    // recorded, so is every chunk the connection sent before it.
    [=](marker_atom) { record->add("marker"); },
    [=](eof_atom) {
      record->add("eof");
      link->done(upload_answer{{}, {{"id", "u1"}}, {}});
      self->quit();
    },
    [=](abort_atom) {
      record->add("abort");
      link->done(upload_answer{{error_code::client_closed, "test"}, {}, {}});
      self->quit();
    },
  };
}

struct reply {
  unsigned status = 0;
  http::fields headers;
  std::string body;
};

// The complete responses in `data`, in order.
std::vector<reply> parse_replies(const std::string& data) {
  std::vector<reply> out;
  std::size_t at = 0;
  while (at < data.size()) {
    http::response_parser<http::string_body> p;
    p.eager(true);
    beast::error_code ec;
    auto used = p.put(net::buffer(data.data() + at, data.size() - at), ec);
    if (ec || !p.is_done())
      break;
    at += used;
    auto& m = p.get();
    out.push_back({m.result_int(), m.base(), m.body()});
  }
  return out;
}

auto responses(std::size_t n) {
  return [n](const std::string& data) { return parse_replies(data).size() >= n; };
}

auto until_closed() {
  return [](const std::string&) { return false; };
}

struct caf_config : caf::actor_system_config {
  caf_config() { set("scheduler.max-threads", 2); }
};

struct world;
world* current = nullptr; // the route function is a plain function pointer

struct world {
  config cfg;
  caf_config caf_cfg;
  caf::actor_system sys{caf_cfg};
  std::shared_ptr<chunk_pool> chunks;
  std::shared_ptr<portal::metrics> stats = std::make_shared<portal::metrics>(metrics_sources{});
  services svc;
  connection_registry registry;
  net::io_context ioc;
  beast::test::stream client{ioc};

  std::vector<std::string> routed; // "METHOD path" of each request a handler saw
  upload_mode mode = upload_mode::credit;
  std::shared_ptr<upload_record> record = std::make_shared<upload_record>();
  caf::actor upload;

  static config test_config() {
    config c;
    c.header_timeout = 1s;
    c.body_idle_timeout = 1s;
    c.credit_window = 2;
    return c;
  }

  explicit world(std::size_t chunk_bytes = 16)
    : cfg(test_config()), chunks(std::make_shared<chunk_pool>(chunk_bytes, chunk_bytes * 64)),
      svc{cfg, sys, nullptr, nullptr, chunks, nullptr, stats, nullptr, &route} {
    current = this;
    beast::test::stream server{ioc};
    client.connect(server);
    std::make_shared<http_session<beast::test::stream>>(std::move(server), svc, registry)->run();
  }
  ~world() {
    client.close();
    run_until([&] { return registry.size() == 0; });
    current = nullptr;
  }
  world(const world&) = delete;
  world& operator=(const world&) = delete;

  // /echo answers 200 "METHOD path"; /refuse 413 without touching the body;
  // /form reads at most 8 bytes whole; /upload streams into a fake upload.
  static void route(const services& svc, exchange_ptr ex) {
    auto& w = *current;
    auto what = std::string{ex->head.method_string()} + " " + ex->path;
    w.routed.push_back(what);
    if (ex->path == "/echo") {
      response res{http::status::ok, 11};
      res.body() = what;
      res.prepare_payload();
      return ex->reply(std::move(res));
    }
    if (ex->path == "/refuse")
      return ex->reply(error_response({error_code::payload_too_large, "no"}));
    if (ex->path == "/form")
      return ex->read_body(8, [ex](exchange::small_body body) {
        if (auto* status = std::get_if<http::status>(&body))
          return ex->reply(error_response({*status == http::status::payload_too_large
                                             ? error_code::payload_too_large
                                             : error_code::bad_request,
                                           "refused"}));
        response res{http::status::ok, 11};
        res.body() = std::get<std::string>(body);
        res.prepare_payload();
        ex->reply(std::move(res));
      });
    ex->hand_over([&svc, &w](upload_link_ptr link) {
      w.upload = svc.sys.spawn(fake_upload, std::move(link), w.record, w.mode);
      // Dynamically typed, to take the test's own grant and marker too.
      return caf::actor_cast<upload_session_actor>(w.upload);
    });
  }

  template <class Pred>
  bool run_until(Pred pred, std::chrono::milliseconds limit = 5000ms) {
    auto guard = net::make_work_guard(ioc);
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
      if (std::chrono::steady_clock::now() > deadline)
        return false;
      ioc.restart();
      ioc.run_for(1ms);
    }
    return true;
  }

  // Runs every handler that is ready, without waiting for time to pass.
  void settle() {
    for (int i = 0; i < 20; ++i) {
      ioc.restart();
      ioc.poll();
    }
  }

  void send(const std::string& bytes) { net::write(client, net::buffer(bytes)); }

  // Sends `request`: the server answers once and closes the connection.
  reply answer_then_close(const std::string& request) {
    send(request);
    bool closed = false;
    auto r = parse_replies(read(until_closed(), closed));
    CHECK(closed);
    REQUIRE(r.size() == 1);
    return r[0];
  }

  // What the server wrote, until `enough` says so or the server closed the
  // connection (then `closed` is set).
  std::string read(const std::function<bool(const std::string&)>& enough, bool& closed) {
    std::string data;
    closed = false;
    char buf[4096];
    while (!enough(data)) {
      bool done = false;
      beast::error_code result;
      std::size_t n = 0;
      client.async_read_some(net::buffer(buf), [&](beast::error_code ec, std::size_t got) {
        result = ec;
        n = got;
        done = true;
      });
      if (!run_until([&] { return done; })) {
        client.close(); // completes the read: the test fails below
        run_until([&] { return done; });
        FAIL("the server neither answered nor closed in time; got: " << data);
      }
      data.append(buf, n);
      if (result) {
        closed = true;
        break;
      }
    }
    return data;
  }
};

std::string error_code_of(const reply& r) {
  auto doc = boost::json::parse(r.body).as_object();
  return std::string{doc.at("error").at("code").as_string()};
}

std::string head(const char* method, const char* target, const std::string& fields = {}) {
  return std::string{method} + " " + target + " HTTP/1.1\r\nHost: x\r\n" + fields + "\r\n";
}

} // namespace

TEST_CASE("keep-alive: requests on one connection are answered in order", "[http_session]") {
  world w;
  w.send(head("GET", "/echo") + head("POST", "/echo") + head("GET", "/echo?x=1"));
  bool closed = false;
  auto data = w.read(responses(3), closed);
  auto r = parse_replies(data);
  REQUIRE(r.size() == 3);
  CHECK(r[0].status == 200);
  CHECK(r[0].body == "GET /echo");
  CHECK(r[1].body == "POST /echo");
  CHECK(r[2].body == "GET /echo");
  CHECK_FALSE(closed);
  for (auto& one : r) {
    CHECK(one.headers["X-Request-Id"].size() == 16);
    CHECK(one.headers["X-Content-Type-Options"] == "nosniff");
  }
  CHECK(r[0].headers["X-Request-Id"] != r[2].headers["X-Request-Id"]);

  // Connection: close ends the loop after its answer.
  w.send(head("GET", "/echo", "Connection: close\r\n") + head("GET", "/echo"));
  data = w.read(until_closed(), closed);
  CHECK(closed);
  r = parse_replies(data);
  REQUIRE(r.size() == 1);
  CHECK(r[0].headers[http::field::connection] == "close");
  CHECK(w.routed.size() == 4);
}

TEST_CASE("a body no handler read closes the connection after the answer", "[http_session]") {
  world w;
  auto r = w.answer_then_close(head("GET", "/echo", "Content-Length: 5\r\n") + "12345" +
                               head("GET", "/echo"));
  CHECK(r.status == 200);
  CHECK(w.routed.size() == 1);
}

TEST_CASE("a head over 16 KiB: 431 in the JSON shape, then close", "[http_session]") {
  world w;
  auto r = w.answer_then_close(
    head("GET", "/echo", "X-Big: " + std::string(std::size_t{17} * 1024, 'a') + "\r\n"));
  CHECK(r.status == 431);
  CHECK(error_code_of(r) == "request_header_fields_too_large");
  CHECK(w.routed.empty());
}

TEST_CASE("a 15 KiB head is within the limit", "[http_session]") {
  world w;
  w.send(head("GET", "/echo", "X-Big: " + std::string(std::size_t{15} * 1024, 'a') + "\r\n"));
  bool closed = false;
  auto r = parse_replies(w.read(responses(1), closed));
  REQUIRE(r.size() == 1);
  CHECK(r[0].status == 200);
}

TEST_CASE("the head deadline: 408 for half a head, silence just closes", "[http_session]") {
  SECTION("half a head") {
    world w;
    auto started = std::chrono::steady_clock::now();
    auto r = w.answer_then_close("GET /echo HTTP/1.1\r\nHo");
    CHECK(std::chrono::steady_clock::now() - started >= 900ms);
    CHECK(r.status == 408);
    CHECK(error_code_of(r) == "request_timeout");
  }
  SECTION("a kept-alive connection that says nothing more") {
    world w;
    // The answer, then nothing: no 408 into silence.
    CHECK(w.answer_then_close(head("GET", "/echo")).status == 200);
  }
}

TEST_CASE("a malformed head: 400, then close", "[http_session]") {
  world w;
  auto r = w.answer_then_close("GET /echo HTTP/1.1\r\nHost x\r\n\r\n" + head("GET", "/echo"));
  CHECK(r.status == 400);
  CHECK(w.routed.empty());
}

TEST_CASE("framing in doubt: refused, and nothing after it runs", "[http_session]") {
  struct case_ {
    const char* fields;
    unsigned status;
  };
  for (auto c :
       {case_{"Transfer-Encoding: gzip\r\n", 400},
        case_{"Transfer-Encoding: gzip, chunked\r\n", 501}, case_{"Content-Length: 0, 0\r\n", 400},
        case_{"Content-Length: 0\r\nX-Note: a\r\n b\r\n", 400}}) {
    INFO(c.fields);
    world w;
    auto r = w.answer_then_close(head("PUT", "/upload", c.fields) + head("GET", "/echo"));
    CHECK(r.status == c.status);
    CHECK(error_code_of(r) == (c.status == 400 ? "bad_request" : "not_implemented"));
    CHECK(w.routed.empty());
  }
}

TEST_CASE("upload: the body streams into the upload, eof, then its answer", "[body_stream]") {
  world w;
  std::string body(100, 'b');
  for (std::size_t i = 0; i < body.size(); ++i)
    body[i] = static_cast<char>('a' + i % 26);
  w.send(head("PUT", "/upload", "Content-Length: 100\r\n") + body + head("GET", "/echo"));
  bool closed = false;
  auto r = parse_replies(w.read(responses(2), closed));
  REQUIRE(r.size() == 2);
  CHECK(r[0].status == 201);
  CHECK(r[0].headers[http::field::location] == "/api/v1/uploads/u1");
  CHECK(r[1].status == 200); // kept alive after the upload
  CHECK(w.record->received() == body);
  auto seen = w.record->seen();
  CHECK(seen.back() == "eof");
  CHECK(std::count(seen.begin(), seen.end(), "abort") == 0);
}

TEST_CASE("upload: chunked bodies stream alike", "[body_stream]") {
  world w;
  w.send(head("PUT", "/upload", "Transfer-Encoding: chunked\r\n") +
         "5\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n");
  bool closed = false;
  auto r = parse_replies(w.read(responses(1), closed));
  REQUIRE(r.size() == 1);
  CHECK(r[0].status == 201);
  CHECK(w.record->received() == "helloabcdefghijklmnopqrstuvwxyz");
}

TEST_CASE("upload: reads stop while the upload holds no credit", "[body_stream]") {
  world w; // 16-byte chunks, a window of 2
  w.mode = upload_mode::hold;
  std::string body(100, 'x');
  w.send(head("PUT", "/upload", "Content-Length: 100\r\n") + body);
  REQUIRE(w.run_until([&] { return w.record->seen().size() == 2; }));
  // Everything the client sent is there to read; with no credit left the
  // connection reads none of it.
  w.settle();
  caf::anon_send(w.upload, marker_atom::value);
  REQUIRE(w.run_until([&] { return w.record->seen().size() >= 3; }));
  CHECK(w.record->seen() == std::vector<std::string>{"chunk", "chunk", "marker"});
  caf::anon_send(w.upload, grant_atom::value, std::size_t{100});
  bool closed = false;
  auto r = parse_replies(w.read(responses(1), closed));
  REQUIRE(r.size() == 1);
  CHECK(r[0].status == 201);
  CHECK(w.record->received() == body);
}

TEST_CASE("upload: an answer while a read is pending stops the stream", "[body_stream]") {
  world w;
  w.mode = upload_mode::refuse_first;
  auto r = w.answer_then_close(head("PUT", "/upload", "Content-Length: 1000\r\n") + "not gzip");
  CHECK(r.status == 415);
  CHECK(error_code_of(r) == "unsupported_media_type");
  CHECK(r.headers[http::field::connection] == "close");
  CHECK(w.record->seen() == std::vector<std::string>{"chunk"}); // no abort: it answered
}

TEST_CASE("upload: a client silent past the body deadline gets 408", "[body_stream]") {
  world w;
  auto started = std::chrono::steady_clock::now();
  auto r = w.answer_then_close(head("PUT", "/upload", "Content-Length: 100\r\n") + "0123456789");
  CHECK(std::chrono::steady_clock::now() - started >= 900ms);
  CHECK(r.status == 408);
  CHECK(error_code_of(r) == "request_timeout");
  REQUIRE(w.run_until([&] { return w.record->last() == "abort"; }));
  CHECK(w.record->received() == "0123456789");
}

TEST_CASE("upload: a client that goes away mid-body aborts the upload", "[body_stream]") {
  world w;
  w.send(head("PUT", "/upload", "Content-Length: 100\r\n") + "0123456789");
  REQUIRE(w.run_until([&] { return !w.record->seen().empty(); }));
  w.client.close();
  REQUIRE(w.run_until([&] { return w.record->last() == "abort"; }));
}

TEST_CASE("upload: a malformed chunked body is 400 and aborts the upload", "[body_stream]") {
  world w;
  auto r = w.answer_then_close(head("PUT", "/upload", "Transfer-Encoding: chunked\r\n") +
                               "5\r\nhello\r\nzz\r\n");
  CHECK(r.status == 400);
  REQUIRE(w.run_until([&] { return w.record->last() == "abort"; }));
}

TEST_CASE("upload: an empty body is eof at once", "[body_stream]") {
  world w;
  w.send(head("PUT", "/upload", "Content-Length: 0\r\n"));
  bool closed = false;
  auto r = parse_replies(w.read(responses(1), closed));
  REQUIRE(r.size() == 1);
  CHECK(r[0].status == 201);
  CHECK(w.record->seen() == std::vector<std::string>{"eof"});
}

// Sends a head that expects 100 Continue, then (once it came) the body;
// returns the final answer.
reply after_continue(world& w, const char* method, const char* target, const std::string& body) {
  w.send(head(method, target,
              "Content-Length: " + std::to_string(body.size()) + "\r\nExpect: 100-continue\r\n"));
  bool closed = false;
  auto r = parse_replies(w.read(responses(1), closed));
  REQUIRE(r.size() == 1);
  CHECK(r[0].status == 100);
  w.send(body);
  r = parse_replies(w.read(responses(1), closed));
  REQUIRE(r.size() == 1);
  return r[0];
}

TEST_CASE("100 Continue: once, when a handler took the body, never before a refusal",
          "[body_stream]") {
  SECTION("an upload") {
    world w;
    CHECK(after_continue(w, "PUT", "/upload", "hello").status == 201);
    CHECK(w.record->received() == "hello");
  }
  SECTION("a form") {
    world w;
    auto r = after_continue(w, "POST", "/form", "a=b&c");
    CHECK(r.status == 200);
    CHECK(r.body == "a=b&c");
  }
  SECTION("a refusal instead") {
    world w; // the head alone: the client waits for 100 Continue
    auto r =
      w.answer_then_close(head("PUT", "/refuse", "Content-Length: 5\r\nExpect: 100-continue\r\n"));
    CHECK(r.status == 413);
  }
}

TEST_CASE("a small body is read whole, up to its limit", "[body_stream]") {
  SECTION("within the limit, chunked") {
    world w;
    w.send(head("POST", "/form", "Transfer-Encoding: chunked\r\n") +
           "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n" + head("GET", "/echo"));
    bool closed = false;
    auto r = parse_replies(w.read(responses(2), closed));
    REQUIRE(r.size() == 2);
    CHECK(r[0].body == "abcde");
    CHECK(r[1].body == "GET /echo");
  }
  SECTION("Content-Length over the limit: 413 before reading") {
    world w;
    CHECK(w.answer_then_close(head("POST", "/form", "Content-Length: 9\r\n")).status == 413);
  }
  SECTION("a chunked body past the limit: 413") {
    world w;
    auto r = w.answer_then_close(head("POST", "/form", "Transfer-Encoding: chunked\r\n") +
                                 "9\r\n123456789\r\n0\r\n\r\n");
    CHECK(r.status == 413);
  }
  SECTION("a client gone mid-body: no answer, closed") {
    world w;
    w.send(head("POST", "/form", "Content-Length: 8\r\n") + "abc");
    REQUIRE(w.run_until([&] { return w.routed.size() == 1; }));
    w.client.close();
    REQUIRE(w.run_until([&] { return w.registry.size() == 0; }));
  }
}

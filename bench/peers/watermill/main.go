// Watermill peer for the outbox benchmark (issue 15): Watermill's Forwarder component, the way
// https://watermill.io/advanced/forwarder/ sets it up, with the SQL subscriber on PostgreSQL
// (DefaultPostgreSQLSchema + DefaultPostgreSQLOffsetsAdapter) and the Kafka publisher (sarama
// SyncProducer) as its output.
//
// Subcommands (peer.sh calls them; all read the environment below):
//
//	watermill-peer schema      drop + create Watermill's tables for $PEER_TOPIC (its own init queries)
//	watermill-peer insert-sql  print the INSERT the Forwarder's decorated SQL publisher would run
//	watermill-peer describe    print one line: name, versions, guarantees
//	watermill-peer run         forward until SIGTERM/SIGINT (foreground, logs to stderr)
//	watermill-peer create-topic PARTITIONS   create $PEER_TOPIC (for smoke.sh; the driver creates its own)
//
// Environment: DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS (comma separated), PEER_TOPIC (Kafka topic, also the
// forwarder's SQL topic), PEER_SCHEMA (default public), WM_BATCH_SIZE (default 1000), WM_POLL_INTERVAL
// (default 10ms). A missing or bad value exits 2 naming the variable, before anything is written.
package main

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// partitionMetadataKey is the message metadata field the Kafka marshaler uses as the record key
// (the name the watermill-kafka docs use in their partitioning example).
const partitionMetadataKey = "partition"

type settings struct {
	databaseURL  string
	brokers      []string
	topic        string
	schema       string
	batchSize    int
	pollInterval time.Duration
}

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func usageError(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "watermill-peer: "+format+"\n", args...)
	os.Exit(2)
}

func requireEnv(name, fix string) string {
	value := os.Getenv(name)
	if value == "" {
		usageError("%s is not set: %s", name, fix)
	}
	return value
}

// loadSettings reads and validates the environment; needDB/needKafka select what the subcommand uses.
func loadSettings(needDB, needKafka bool) settings {
	s := settings{schema: "public", batchSize: 1000, pollInterval: 10 * time.Millisecond}
	s.topic = requireEnv("PEER_TOPIC", "set it to the Kafka topic to forward to, e.g. bench-wm-smoke")
	// Watermill's own rule for SQL topic names (they become table names).
	if regexp.MustCompile(`[^A-Za-z0-9\-\$\:\.\_]`).MatchString(s.topic) || len(s.topic) > 50 {
		usageError("PEER_TOPIC=%q: use at most 50 of A-Z a-z 0-9 - . _ (it names the table watermill_<topic>)", s.topic)
	}
	if v := os.Getenv("PEER_SCHEMA"); v != "" {
		if !identifier.MatchString(v) {
			usageError("PEER_SCHEMA=%q: use a lower-case SQL identifier, e.g. bench_wm", v)
		}
		s.schema = v
	}
	if v := os.Getenv("WM_BATCH_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100000 {
			usageError("WM_BATCH_SIZE=%q: use an integer 1..100000 (rows per SELECT of the SQL subscriber)", v)
		}
		s.batchSize = n
	}
	if v := os.Getenv("WM_POLL_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			usageError("WM_POLL_INTERVAL=%q: use a positive Go duration, e.g. 10ms", v)
		}
		s.pollInterval = d
	}
	if needDB {
		s.databaseURL = requireEnv("DATABASE_URL", "set it to the PostgreSQL URL, e.g. postgresql://outbox@127.0.0.1:55432/outbox")
	}
	if needKafka {
		raw := requireEnv("KAFKA_BOOTSTRAP_SERVERS", "set it to host:port[,host:port], e.g. 127.0.0.1:59092")
		for _, b := range strings.Split(raw, ",") {
			if b = strings.TrimSpace(b); b != "" {
				s.brokers = append(s.brokers, b)
			}
		}
		if len(s.brokers) == 0 {
			usageError("KAFKA_BOOTSTRAP_SERVERS=%q names no broker: use host:port[,host:port]", raw)
		}
	}
	return s
}

func (s settings) messagesTable(topic string) string {
	return fmt.Sprintf(`"%s"."watermill_%s"`, s.schema, topic)
}

func (s settings) offsetsTable(topic string) string {
	return fmt.Sprintf(`"%s"."watermill_offsets_%s"`, s.schema, topic)
}

// Watermill's documented PostgreSQL adapters, only the table names qualified with $PEER_SCHEMA.
func (s settings) schemaAdapter() sql.DefaultPostgreSQLSchema {
	return sql.DefaultPostgreSQLSchema{
		GenerateMessagesTableName: s.messagesTable,
		SubscribeBatchSize:        s.batchSize,
	}
}

func (s settings) offsetsAdapter() sql.DefaultPostgreSQLOffsetsAdapter {
	return sql.DefaultPostgreSQLOffsetsAdapter{GenerateMessagesOffsetsTableName: s.offsetsTable}
}

func openDB(s settings) *stdsql.DB {
	db, err := stdsql.Open("pgx", s.databaseURL)
	if err != nil {
		usageError("DATABASE_URL: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "watermill-peer: cannot connect to DATABASE_URL: %v\n", err)
		os.Exit(1)
	}
	return db
}

func newSubscriber(s settings, db *stdsql.DB, logger watermill.LoggerAdapter) (*sql.Subscriber, error) {
	return sql.NewSubscriber(sql.BeginnerFromStdSQL(db), sql.SubscriberConfig{
		ConsumerGroup:    "bench-wm-forwarder",
		SchemaAdapter:    s.schemaAdapter(),
		OffsetsAdapter:   s.offsetsAdapter(),
		PollInterval:     s.pollInterval,
		InitializeSchema: true,
	}, logger)
}

// cmdSchema drops Watermill's tables for the topic and lets Watermill create them again
// (its SubscribeInitialize runs the adapters' own CREATE TABLE queries).
func cmdSchema() error {
	s := loadSettings(true, false)
	db := openDB(s)
	defer db.Close()
	for _, q := range []string{
		fmt.Sprintf(`CREATE SCHEMA IF NOT EXISTS "%s"`, s.schema),
		"DROP TABLE IF EXISTS " + s.messagesTable(s.topic),
		"DROP TABLE IF EXISTS " + s.offsetsTable(s.topic),
	} {
		if _, err := db.Exec(q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	sub, err := newSubscriber(s, db, watermill.NopLogger{})
	if err != nil {
		return err
	}
	return sub.SubscribeInitialize(s.topic)
}

// cmdInsertSQL prints what forwarder.NewPublisher(sql.NewPublisher(tx, DefaultPostgreSQLSchema)) inserts
// for Publish($PEER_TOPIC, msg{payload: $2, metadata: {partition: $1}}): an envelope (JSON with the
// destination topic, the message uuid, the payload as base64 — Go's encoding of []byte — and the
// metadata) in the forwarder topic's table, outer metadata {}, transaction_id pg_current_xact_id().
func cmdInsertSQL() {
	s := loadSettings(false, false)
	fmt.Printf("INSERT INTO %s (uuid, payload, metadata, transaction_id) VALUES ("+
		"gen_random_uuid()::text, "+
		"json_build_object('destination_topic', '%s', 'uuid', gen_random_uuid()::text, "+
		"'payload', translate(encode(convert_to($2::text, 'UTF8'), 'base64'), E'\\n', ''), "+
		"'metadata', json_build_object('%s', $1::text)), "+
		"'{}'::json, pg_current_xact_id())\n",
		s.messagesTable(s.topic), s.topic, partitionMetadataKey)
}

func moduleVersion(path string) string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, m := range info.Deps {
			if m.Path == path {
				return m.Version
			}
		}
	}
	return "unknown"
}

func cmdDescribe() {
	fmt.Printf("watermill forwarder (watermill %s, watermill-sql %s, watermill-kafka %s, sarama %s): "+
		"total order by commit (one consumer group, offsets row locked FOR UPDATE), so order per key holds with N instances "+
		"(they take turns, one forwards at a time); one sync Kafka produce per message, acks=all, idempotent; "+
		"at-least-once to Kafka; mark (an offset per consumer group), rows are never deleted\n",
		moduleVersion("github.com/ThreeDotsLabs/watermill"),
		moduleVersion("github.com/ThreeDotsLabs/watermill-sql/v4"),
		moduleVersion("github.com/ThreeDotsLabs/watermill-kafka/v3"),
		moduleVersion("github.com/IBM/sarama"))
}

// saramaConfig: watermill-kafka's default sync publisher config plus the durability settings our relay uses
// (acks=all, idempotence) and the broker's protocol version.
func saramaConfig() *sarama.Config {
	c := kafka.DefaultSaramaSyncPublisherConfig()
	c.Version = sarama.V3_6_0_0
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Idempotent = true
	c.Net.MaxOpenRequests = 1 // sarama requires 1 with Idempotent
	c.Producer.Compression = sarama.CompressionNone
	c.ClientID = "watermill-bench-peer"
	return c
}

// cmdCreateTopic creates $PEER_TOPIC with the given partition count (replication 1); an existing topic is an error.
func cmdCreateTopic(args []string) error {
	s := loadSettings(false, true)
	partitions := 0
	if len(args) == 1 {
		partitions, _ = strconv.Atoi(args[0])
	}
	if partitions < 1 {
		usageError("create-topic PARTITIONS: give a positive partition count, e.g. 6")
	}
	admin, err := sarama.NewClusterAdmin(s.brokers, saramaConfig())
	if err != nil {
		return err
	}
	defer admin.Close()
	return admin.CreateTopic(s.topic, &sarama.TopicDetail{NumPartitions: int32(partitions), ReplicationFactor: 1}, false)
}

func cmdRun() error {
	s := loadSettings(true, true)
	logger := watermill.NewStdLogger(false, false)
	db := openDB(s)
	defer db.Close()

	sub, err := newSubscriber(s, db, logger)
	if err != nil {
		return fmt.Errorf("sql subscriber: %w", err)
	}
	pub, err := kafka.NewPublisher(kafka.PublisherConfig{
		Brokers: s.brokers,
		Marshaler: kafka.NewWithPartitioningMarshaler(func(_ string, msg *message.Message) (string, error) {
			return msg.Metadata.Get(partitionMetadataKey), nil
		}),
		OverwriteSaramaConfig: saramaConfig(),
	}, logger)
	if err != nil {
		return fmt.Errorf("kafka publisher: %w", err)
	}
	defer pub.Close()

	fwd, err := forwarder.NewForwarder(sub, pub, logger, forwarder.Config{
		ForwarderTopic: s.topic,
		CloseTimeout:   10 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("forwarder: %w", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	logger.Info("forwarding", watermill.LogFields{
		"sql_table": s.messagesTable(s.topic), "kafka_topic": s.topic,
		"batch_size": s.batchSize, "poll_interval": s.pollInterval.String(),
	})
	if err := fwd.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	logger.Info("stopped", nil)
	return nil
}

func main() {
	cmd := "run"
	if len(os.Args) > 1 {
		cmd = os.Args[1]
	}
	var err error
	switch cmd {
	case "run":
		err = cmdRun()
	case "schema":
		err = cmdSchema()
	case "insert-sql":
		cmdInsertSQL()
	case "describe":
		cmdDescribe()
	case "create-topic":
		err = cmdCreateTopic(os.Args[2:])
	default:
		usageError("unknown command %q: use run, schema, insert-sql, describe or create-topic", cmd)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "watermill-peer %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

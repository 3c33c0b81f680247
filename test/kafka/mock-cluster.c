/*
 * A Kafka-protocol broker for the tests: librdkafka's mock cluster on localhost ports.
 * Prints "BOOTSTRAP <host:port,...>" and then obeys one command per line on stdin:
 *   topic <name> <partitions>        create a topic
 *   down <broker id|-1>              disconnect a broker and refuse connections
 *   up <broker id|-1>                accept connections again
 *   error <api key> <count> <code>   fail the next <count> requests of that API with <code>
 *   quit                             shut down (also on end of input)
 * Every command is answered with "OK <command>" or "ERR <reason>".
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  int brokers = argc > 1 ? atoi(argv[1]) : 3;
  char errstr[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  if (!rk) { fprintf(stderr, "rd_kafka_new: %s\n", errstr); return 1; }
  rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
  if (!mc) { fprintf(stderr, "rd_kafka_mock_cluster_new failed\n"); return 1; }
  printf("BOOTSTRAP %s\n", rd_kafka_mock_cluster_bootstraps(mc));
  fflush(stdout);

  char line[1024];
  while (fgets(line, sizeof(line), stdin)) {
    char cmd[32] = {0}, name[512] = {0};
    int a = 0, b = 0, c = 0;
    line[strcspn(line, "\n")] = 0;
    if (sscanf(line, "%31s", cmd) != 1) continue;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (!strcmp(cmd, "quit")) break;
    else if (!strcmp(cmd, "topic") && sscanf(line, "%*s %511s %d", name, &a) == 2)
      err = rd_kafka_mock_topic_create(mc, name, a, 1);
    else if (!strcmp(cmd, "down") && sscanf(line, "%*s %d", &a) == 1)
      err = rd_kafka_mock_broker_set_down(mc, a);
    else if (!strcmp(cmd, "up") && sscanf(line, "%*s %d", &a) == 1)
      err = rd_kafka_mock_broker_set_up(mc, a);
    else if (!strcmp(cmd, "error") && sscanf(line, "%*s %d %d %d", &a, &b, &c) == 3) {
      for (int i = 0; i < b; i++) rd_kafka_mock_push_request_errors(mc, (int16_t)a, 1, (rd_kafka_resp_err_t)c);
    } else {
      printf("ERR unknown command: %s\n", line);
      fflush(stdout);
      continue;
    }
    if (err) printf("ERR %s: %s\n", line, rd_kafka_err2str(err));
    else printf("OK %s\n", line);
    fflush(stdout);
  }
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(rk);
  return 0;
}

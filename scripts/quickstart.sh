#!/usr/bin/env bash
# The quick start: installs the build dependencies, builds stele, and runs
# the bank example end to end on the embedded default (a SQLite log and
# read-model store in config/data/, no server).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build Release

stele=./build/stele
cfg=config/stele.yaml
echo
echo "== starting from an empty log (config/data/)"
rm -rf config/data

echo "== stele run: the host, in the background"
$stele run -c $cfg &
host=$!
trap 'kill $host 2>/dev/null || true' EXIT
sleep 0.3

send() {  # send JSON: prints the boxed result; a rejection is not an error here
  echo "\$ stele send '$1'"
  $stele send -c $cfg "$1" || [ $? -eq 3 ]
}

echo
echo "== commands"
send '{"type":"bank.OpenAccount","aggregate_id":"acc-1","data":{"owner":"Alice","initial_deposit":100}}'
send '{"type":"bank.Deposit","aggregate_id":"acc-1","data":{"amount":50}}'
send '{"type":"bank.Withdraw","aggregate_id":"acc-1","data":{"amount":500}}'
send '{"type":"bank.Withdraw","aggregate_id":"acc-1","data":{"amount":30},"expected_version":1}'
send '{"type":"bank.Withdraw","aggregate_id":"acc-1","data":{"amount":30},"expected_version":2,"command_id":"withdraw-30"}'
echo "(the same command id again: the stored result, no second withdrawal)"
send '{"type":"bank.Withdraw","aggregate_id":"acc-1","data":{"amount":30},"expected_version":2,"command_id":"withdraw-30"}'
send '{"type":"bank.OpenAccount","aggregate_id":"acc-2","data":{"owner":"Bob"}}'
send '{"type":"bank.CloseAccount","aggregate_id":"acc-2","data":{"reason":"moved away"}}'
send '{"type":"bank.Deposit","aggregate_id":"acc-2","data":{"amount":10}}'

sleep 0.3
echo
echo "== queries"
echo "\$ stele query account '{\"account_id\":\"acc-1\"}'"
$stele query -c $cfg account '{"account_id":"acc-1"}'
echo "\$ stele query --list balances --sort balance --desc"
$stele query -c $cfg --list balances --sort balance --desc
echo "\$ stele query --list daily_totals"
$stele query -c $cfg --list daily_totals
echo
echo "== the events of acc-1, and its state"
$stele events -c $cfg --aggregate Account --id acc-1
$stele state -c $cfg Account acc-1

echo
echo "== stopping the host (SIGTERM: it finishes its batch and exits)"
kill -TERM $host
wait $host
trap - EXIT
echo "done. Run it yourself: ./build/stele --help"

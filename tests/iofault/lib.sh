# Shared by tests/iofault/diskfull and tests/iofault/ioerror (sourced): the commands that
# write files, the inputs they read, and the checks that a failed run lost nothing.
# The caller sets bin (the mcunas binary) and work (a scratch folder).

export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
search=(search --data "$work/s.h5" --target stm32l412kbu3 --strategy grid --k-max 2
        --epochs 1 --final-epochs 1 --calib 4 --threads 1 --quiet)

# The inputs of the other commands: a small dataset cache and trained weights.
iofault_inputs() {
  "$bin" import synthetic -o "$work/s.h5" --size 8x8 --channels 1 --classes 3 --count 24 \
    --test-count 6 >/dev/null 2>&1 || { echo "$1: cannot make the dataset"; return 1; }
  "$bin" train --data "$work/s.h5" --k 2 --cells 1 --epochs 1 --threads 1 --quiet \
    --save "$work/w.h5" >/dev/null 2>&1 || { echo "$1: cannot train"; return 1; }
}

cmd() { # $1: what, $2: output folder
  case $1 in
    import) echo import synthetic -o "$2/d.h5" --size 16x16 --channels 3 --classes 3 \
                   --count 64 --test-count 8 ;;
    train) echo train --data "$work/s.h5" --k 2 --cells 1 --epochs 1 --threads 1 --quiet \
                  --save "$2/w.h5" ;;
    export) echo export --weights "$work/w.h5" --data "$work/s.h5" -o "$2/m.tflite" \
                   --c-array "$2/m.c" --calib 4 --threads 1 ;;
    search) echo "${search[@]}" --out "$2/run" ;;
    rank) echo rank --data "$work/s.h5" --target stm32l412kbu3 --layout nanonas --k-max 2 \
                 --inits 1 --regions-inputs 16 --threads 1 --out "$2/rank.csv" --quiet ;;
  esac
}

cmd_inputs() { # $1: what; the files it reads
  case $1 in
    import) ;;
    export) echo "$work/w.h5" "$work/s.h5" ;;
    *) echo "$work/s.h5" ;;
  esac
}

# Prints what is wrong with a failed run's outputs in folder $2 against the clean run's in
# $3 (command $1), "; "-separated, nothing when all is well: a *.tmp left, an output that
# is not whole (byte-equal to the clean run's; reports carry times, so they must parse or
# have every line; HDF5 files appear only by rename from their .tmp), a journal with a torn
# line, or (when $4 is 1) a search that --resume does not complete.
check_outputs() {
  local what=$1 out=$2 base=$3 resume=$4 why="" f rel
  while IFS= read -r f; do
    rel=${f#"$out"/}
    case $f in
      *.tmp) why="$why; left $rel" ;;
      *.h5|*/journal.jsonl) ;;
      *.json) python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$f" 2>/dev/null ||
                why="$why; $rel is not whole" ;;
      *.csv) [ "$(wc -l <"$f")" = "$(wc -l <"$base/$rel")" ] || why="$why; $rel is not whole" ;;
      *) cmp -s "$f" "$base/$rel" || why="$why; $rel is not whole" ;;
    esac
  done < <(find "$out" -type f)
  if [ "$what" = search ] && [ -f "$out/run/journal.jsonl" ]; then
    python3 -c 'import json,sys
for l in open(sys.argv[1]): json.loads(l)' "$out/run/journal.jsonl" 2>/dev/null ||
      why="$why; the journal has a torn or bad line"
    if [ "$resume" = 1 ]; then
      "$bin" $(cmd "$what" "$out") --resume >/dev/null 2>"$work/resume" ||
        why="$why; --resume failed: $(tail -1 "$work/resume")"
    fi
  fi
  printf '%s' "$why"
}

// eval's part of the CLI's usage text: imports nothing, so `specserve --help` and a usage
// error are answered before the program loads (src/cli-line.ts).
export const evalUsage = `  specserve eval -c config.yaml --data holdout.csv --label <column> [--columns a,b,c]
    [--ensembles a,b] [--budgets 5,10,20] [--out DIR] [--latency-profile model=ms[@fraction],... | file.json]
    [--calibrate [temperature|isotonic]] each ensemble and each member alone over a labeled CSV, at each
                                       budget: report.md, report.json and SVG plots in DIR (default eval-report;
                                       not empty); --budgets: positive numbers, comma-separated;
                                       --columns: the feature columns, in input order (default: all but the label);
                                       --calibrate first fits a temperature (or an isotonic map) per model
                                       into <config>.calibration.json (nothing fitted: not written); a running
                                       server takes it on reload (SIGHUP or POST /admin/reload)`

# reference.R computes the reference vectors in reference.json with R's
# wilcox.test, against which the judge package's Mann-Whitney implementation
# is tested. Regenerate with:
#
#   Rscript reference.R > reference.json
#
# The tests do not need R: they read reference.json.

call <- "wilcox.test(canary, baseline, alternative = \"two.sided\", mu = 0, exact = NULL, correct = TRUE, conf.int = TRUE, conf.level = 0.95)"

set.seed(20250131)
cases <- list(
  list(name = "small exact, canary higher",
       baseline = c(10.2, 11.5, 9.8, 10.9, 11.1, 10.4),
       canary = c(12.3, 11.9, 13.0, 12.7, 11.7, 12.1, 13.4)),
  list(name = "small exact, overlapping",
       baseline = c(101.3, 98.2, 104.7, 99.9, 102.5, 97.1, 100.8, 103.3),
       canary = c(100.1, 105.2, 99.4, 106.8, 102.9, 101.7, 104.1, 98.8, 103.9)),
  list(name = "small exact, canary lower",
       baseline = c(0.52, 0.61, 0.48, 0.57, 0.66, 0.55, 0.59, 0.63, 0.50, 0.58),
       canary = c(0.41, 0.47, 0.53, 0.39, 0.44, 0.49, 0.46, 0.51)),
  list(name = "small exact, unequal sizes",
       baseline = c(3.1, 2.7, 3.4, 2.9, 3.8, 3.3, 2.6, 3.0, 3.6, 2.8, 3.5, 3.2),
       canary = c(3.9, 3.7, 4.2)),
  list(name = "small with ties",
       baseline = c(12, 15, 11, 15, 13, 12, 14),
       canary = c(15, 17, 14, 16, 15, 18, 14, 16)),
  list(name = "large, n = 60 each",
       baseline = round(rnorm(60, mean = 100, sd = 10), 1),
       canary = round(rnorm(60, mean = 104, sd = 10), 1)),
  list(name = "large, skewed, n = 60 and 55",
       baseline = round(rlnorm(60, meanlog = 4, sdlog = 0.5), 2),
       canary = round(rlnorm(55, meanlog = 4.1, sdlog = 0.5), 2)),
  list(name = "exact at the size limit, n = 49 each",
       baseline = sample(seq(1, 1999, by = 2), 49) / 10,
       canary = sample(seq(2, 2000, by = 2), 49) / 10 + 4),
  list(name = "identical samples",
       baseline = c(4, 8, 15, 16, 23, 42, 7, 9, 11, 13),
       canary = c(4, 8, 15, 16, 23, 42, 7, 9, 11, 13)),
  list(name = "fully separated, small",
       baseline = c(1, 2, 3, 4, 5),
       canary = c(11, 12, 13, 14, 15)),
  list(name = "fully separated, n = 20 each",
       baseline = 1:20 + 0.5,
       canary = 101:120),
  list(name = "zeros: error counts, baseline all zero",
       baseline = rep(0, 10),
       canary = c(0, 0, 0, 1, 0, 2, 0, 0, 3, 0)),
  list(name = "zeros: error counts in both",
       baseline = c(0, 1, 0, 0, 2, 0, 0, 1, 0, 0, 0, 1),
       canary = c(0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0))
)

num <- function(v) {
  if (length(v) == 0) return("[]")
  paste0("[", paste(sprintf("%.17g", v), collapse = ", "), "]")
}

cat("{\n")
cat(sprintf("  \"source\": \"%s; %s\",\n", R.version.string, gsub("\"", "\\\\\"", call)))
cat("  \"cases\": [\n")
for (i in seq_along(cases)) {
  cs <- cases[[i]]
  baseline <- cs$baseline
  canary <- cs$canary
  r <- suppressWarnings(eval(parse(text = call)))
  cat("    {\n")
  cat(sprintf("      \"name\": \"%s\",\n", cs$name))
  cat(sprintf("      \"method\": \"%s\",\n", r$method))
  cat(sprintf("      \"baseline\": %s,\n", num(baseline)))
  cat(sprintf("      \"canary\": %s,\n", num(canary)))
  cat(sprintf("      \"statistic\": %.17g,\n", r$statistic))
  cat(sprintf("      \"pValue\": %.17g,\n", r$p.value))
  cat(sprintf("      \"estimate\": %.17g,\n", r$estimate))
  cat(sprintf("      \"ciLow\": %.17g,\n", r$conf.int[1]))
  cat(sprintf("      \"ciHigh\": %.17g\n", r$conf.int[2]))
  cat(if (i < length(cases)) "    },\n" else "    }\n")
}
cat("  ]\n}\n")

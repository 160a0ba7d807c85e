# Reference values for tests/test_schema.py::test_smd_from_d_matches_metafor.
# Versions: R 4.2.2 Patched (2022-11-10 r83330), metafor 3.8.1 (Debian packages).
# Run: Rscript tests/data/metafor_smd_from_d.R > tests/data/metafor_smd_from_d.json
suppressMessages(library(metafor))
cases <- data.frame(di = c(0.43, -0.25, 1.2), n1i = c(145, 20, 8), n2i = c(151, 25, 9))
x <- escalc(measure = "SMD", di = cases$di, n1i = cases$n1i, n2i = cases$n2i)
f <- function(v) paste(sprintf("%.17g", v), collapse = ", ")
cat(sprintf('{\n "source": "metafor %s, %s: escalc(measure=\\"SMD\\", di, n1i, n2i)",\n',
            packageVersion("metafor"), R.version.string))
cat(sprintf(' "di": [%s],\n "n1i": [%s],\n "n2i": [%s],\n "yi": [%s],\n "vi": [%s]\n}\n',
            f(cases$di), f(cases$n1i), f(cases$n2i), f(x$yi), f(x$vi)))

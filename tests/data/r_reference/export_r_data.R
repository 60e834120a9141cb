# Export the R data sets used by make_reference.R to CSV (run once):
#   Rscript export_r_data.R
# Factor columns are written as their labels; make_reference.R re-creates the
# factors with R's original level order.
library(MASS)
write.csv(MASS::quine[, c("Days", "Eth", "Sex", "Age", "Lrn")], "quine.csv",
          row.names = FALSE)
write.csv(datasets::warpbreaks[, c("breaks", "wool", "tension")],
          "warpbreaks.csv", row.names = FALSE)
write.csv(datasets::InsectSprays[, c("count", "spray")], "insectsprays.csv",
          row.names = FALSE)

# Small JSON writer shared by the reference scripts in tests/data/
# (r_reference/make_reference.R and r_inference/make_reference.R).
#
# Every double is printed with sprintf("%.17g") so it round-trips exactly
# (jsonlite caps at 15 significant digits).
#
# Scalars are marked with sc(); every other atomic vector becomes an array
# (also when it has length 1).  Matrices become a list of rows.  NULL, NA, NaN
# and +-Inf become null.
sc <- function(x) structure(list(x), class = "json_scalar")

num_str <- function(x) {
  out <- ifelse(is.finite(x), sprintf("%.17g", x), "null")
  out[out == "-0"] <- "-0.0"
  out
}

atom_str <- function(x) {
  if (is.logical(x)) {
    ifelse(is.na(x), "null", ifelse(x, "true", "false"))
  } else if (is.integer(x)) {
    ifelse(is.na(x), "null", sprintf("%d", x))
  } else if (is.numeric(x)) {
    num_str(as.double(x))
  } else if (is.character(x) || is.factor(x)) {
    x <- as.character(x)
    ifelse(is.na(x), "null", sprintf("\"%s\"", gsub("\"", "\\\\\"",
                                                    gsub("\\\\", "\\\\\\\\", x))))
  } else {
    stop("cannot serialise type ", typeof(x))
  }
}

to_json <- function(x, indent = 0L) {
  pad <- strrep("  ", indent + 1L)
  pad0 <- strrep("  ", indent)
  if (is.null(x)) return("null")
  if (inherits(x, "json_scalar")) {
    v <- x[[1]]
    if (is.null(v)) return("null")
    stopifnot(length(v) == 1L)
    return(atom_str(unname(v)))
  }
  if (is.matrix(x)) {
    rows <- vapply(seq_len(nrow(x)), function(i)
      paste0("[", paste(atom_str(unname(x[i, ])), collapse = ","), "]"), "")
    return(paste0("[\n", pad, paste(rows, collapse = paste0(",\n", pad)),
                  "\n", pad0, "]"))
  }
  if (is.list(x)) {
    if (length(x) == 0L) return(if (is.null(names(x))) "[]" else "{}")
    parts <- vapply(x, to_json, "", indent = indent + 1L)
    if (!is.null(names(x))) {
      parts <- paste0(atom_str(names(x)), ": ", parts)
      return(paste0("{\n", pad, paste(parts, collapse = paste0(",\n", pad)),
                    "\n", pad0, "}"))
    }
    return(paste0("[\n", pad, paste(parts, collapse = paste0(",\n", pad)),
                  "\n", pad0, "]"))
  }
  paste0("[", paste(atom_str(unname(x)), collapse = ","), "]")
}

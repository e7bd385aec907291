//! Result columns mapped by name, at compile time: each table's column list is one
//! string (a macro, so statements are built with `concat!`), and a row is read with
//! `col!(list, "name")`, which finds the name's position in that list while the crate
//! compiles. A misspelt or missing column fails the build instead of reading the
//! wrong field; reading a row costs no name lookup.

/// The position of `name` in a comma-separated column list.
pub(crate) const fn index(list: &str, name: &str) -> usize {
    let list = list.as_bytes();
    let name = name.as_bytes();
    let mut i = 0;
    let mut column = 0;
    loop {
        while i < list.len() && (list[i] == b',' || list[i] == b' ' || list[i] == b'\n') {
            i += 1;
        }
        assert!(i < list.len(), "no such column in the list");
        let start = i;
        while i < list.len() && list[i] != b',' && list[i] != b' ' && list[i] != b'\n' {
            i += 1;
        }
        if i - start == name.len() {
            let mut j = 0;
            while j < name.len() && list[start + j] == name[j] {
                j += 1;
            }
            if j == name.len() {
                return column;
            }
        }
        column += 1;
    }
}

/// `col!(list, "name")`: the position of a column, computed at compile time.
macro_rules! col {
    ($list:expr, $name:literal) => {
        const { $crate::meta::columns::index($list, $name) }
    };
}

pub(crate) use col;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_find_their_positions() {
        let list = "a, bb, c_d,\n e";
        assert_eq!(
            [
                index(list, "a"),
                index(list, "bb"),
                index(list, "c_d"),
                index(list, "e")
            ],
            [0, 1, 2, 3]
        );
        assert_eq!(col!("x, y", "y"), 1);
    }
}

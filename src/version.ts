/** The node software's version, shown by `topai --version` and `node.status`. */
export const VERSION = "0.1.0"
